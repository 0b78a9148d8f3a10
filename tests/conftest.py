"""Test settings shared by every test (offline, quiet, deterministic, headless plotting) and the embedded model."""
import copy
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


# ------------------------------------------------------------------------------------------------ the embedded model
# Loaded once per session; each test gets its own copy, so no test sees another's changes (LoRA layers injected,
# a pad token set, weights trained).


@pytest.fixture(scope="session")
def _tiny_pretrained():
    from coursekit.models import load_base_model

    return load_base_model("tiny", device="cpu")


@pytest.fixture
def tiny_model(_tiny_pretrained):
    """The embedded pretrained model ("tiny", fp32 on the CPU): a fresh copy for this test."""
    return copy.deepcopy(_tiny_pretrained[0])


@pytest.fixture
def tiny_tokenizer(_tiny_pretrained):
    """The embedded model's tokenizer (pad token set as ``load_base_model`` sets it): a fresh copy for this test."""
    return copy.deepcopy(_tiny_pretrained[1])


@pytest.fixture(scope="session")
def _tiny_config():
    from transformers import LlamaConfig

    from coursekit.model_ids import EMBEDDED_MODEL_DIR

    return LlamaConfig.from_pretrained(EMBEDDED_MODEL_DIR)


@pytest.fixture
def tiny_config(_tiny_config):
    """The embedded model's ``LlamaConfig``: a fresh copy for this test."""
    return copy.deepcopy(_tiny_config)


@pytest.fixture
def random_tiny_model(_tiny_config):
    """A factory: ``random_tiny_model(seed=0)`` is a new random-init model of the embedded shape in eval mode; the
    same seed gives the same weights."""

    def make(seed: int = 0):
        import torch
        from transformers import LlamaForCausalLM

        torch.manual_seed(seed)
        return LlamaForCausalLM(copy.deepcopy(_tiny_config)).eval()

    return make


@pytest.fixture(scope="session")
def random_tiny_folder(_tiny_config, tmp_path_factory):
    """A folder with a random-init model of the embedded shape (seed 0), as ``save_pretrained`` writes it: load it,
    do not write to it."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("random-tiny")
    LlamaForCausalLM(copy.deepcopy(_tiny_config)).save_pretrained(folder)
    return folder
