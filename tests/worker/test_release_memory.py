from streaming.worker.health import release_free_memory


def test_release_free_memory_can_be_called_again_and_again() -> None:
    blocks = [bytes(4096) for _ in range(1000)]
    del blocks
    release_free_memory()
    release_free_memory()
