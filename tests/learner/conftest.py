import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny test models gain nothing from threads, and on the shared 2-core machine an
    oversubscribed OpenMP pool makes them many times slower; training tests pass threads=1."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
