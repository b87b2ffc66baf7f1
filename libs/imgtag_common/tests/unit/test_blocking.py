import threading

from imgtag_common.blocking import BlockingExecutor


async def test_blocking_calls_run_off_the_event_loop_thread() -> None:
    executor = BlockingExecutor(2)
    loop_thread = threading.get_ident()
    assert await executor.run(threading.get_ident) != loop_thread
    assert await executor.run(sum, [1, 2, 3]) == 6
    executor.shutdown()
