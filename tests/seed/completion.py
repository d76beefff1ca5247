# The seed README's "Cancellation" and "Handling Completion" patterns, as written,
# around the CPU example's function.
from tasker import task_mgr

from tests.seed.cpu_task import my_cpu_task


def my_cancellable_task(context):
    while True:
        # In your background function:
        if context.is_cancelled():
            print("Task was cancelled, stopping work.")
            return


def on_task_finished(task):
    if task.get_status() == 'completed':
        print(f"Task finished with result: {task.result()}")
    elif task.get_status() == 'failed':
        print(f"Task failed: {task._task_exception}")


def start():
    task_mgr.run_process(my_cpu_task, 10, when_done=on_task_finished)


def cancel():
    # In your UI code:
    task_mgr.cancel_task("calculator")
