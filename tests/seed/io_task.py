# The seed README's "Running an I/O-Bound Task" example, as written
# (with `your_project.tasker` replaced by `tasker`).
import asyncio
from tasker import task_mgr


# Your background function MUST accept `context` as the first argument.
async def my_io_task(context, url):
    context.set_message("Downloading...")
    # ... perform async download ...
    await asyncio.sleep(2) # Simulate work
    context.set_progress(1.0)
    context.set_message("Download complete!")


# Start the task from your UI code (e.g., a button click)
task_mgr.add_coroutine(my_io_task, "http://example.com", key="downloader")
