# The seed README's "Running a CPU-Bound Task" example, as written
# (with `your_project.tasker` replaced by `tasker`).
import time
from tasker import task_mgr


# A regular function, not async.
def my_cpu_task(context, iterations):
    context.set_total(iterations)
    context.set_message("Calculating...")
    for i in range(iterations):
        # ... perform heavy calculation ...
        time.sleep(0.1) # Simulate work
        context.set_progress(i + 1)
    return "Final Result"


# Start the task
task_mgr.run_process(my_cpu_task, 50, key="calculator")
