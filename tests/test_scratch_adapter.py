"""coursekit.scratch.adapter (Houlsby adapters) and prefix (prefix-tuning counts against peft)."""
import copy

import pytest
import torch

from coursekit.scratch.adapter import HoulsbyAdapter, adapter_parameter_count, inject_adapters
from coursekit.scratch.prefix import prefix_tuning_parameter_count, prefix_tuning_parameter_count_for_config


def test_adapter_is_exact_identity_at_start_and_counts():
    a = HoulsbyAdapter(256, 16)
    x = torch.randn(2, 5, 256)
    assert torch.equal(a(x), x)
    assert sum(p.numel() for p in a.parameters()) == 2 * 256 * 16 + 16 + 256
    # the quoted formula 2 * (h*b + b) forgets that the up-projection's bias has h entries, not b
    assert adapter_parameter_count(4096, 64, 1) == 2 * 528_448
    assert adapter_parameter_count(4096, 64, 1) // 2 - 2 * (4096 * 64 + 64) == 4096 - 64


def test_inject_adapters_identity_then_trainable_and_count(random_tiny_model):
    model = random_tiny_model()
    ids = torch.randint(0, 2048, (2, 10))
    with torch.no_grad():
        before = model(ids).logits
    n = inject_adapters(model, bottleneck=16)
    cfg = model.config
    assert n == adapter_parameter_count(cfg.hidden_size, 16, cfg.num_hidden_layers) == 4 * 2 * (2 * 256 * 16 + 16 + 256)
    assert n == sum(p.numel() for p in model.parameters() if p.requires_grad)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("adapter" in name for name in trainable)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)  # exact identity at the start
    # the adapters are really in the forward path: a nudge to one up-projection changes the output
    with torch.no_grad():
        model.model.layers[0].mlp_adapter.up_project.bias.add_(0.1)
        assert not torch.allclose(model(ids).logits, before)
        model.model.layers[0].mlp_adapter.up_project.bias.zero_()
        model.model.layers[2].attn_adapter.up_project.bias.add_(0.1)
        assert not torch.allclose(model(ids).logits, before)
    # a training step moves adapter weights only
    frozen = model.model.layers[1].self_attn.q_proj.weight.detach().clone()
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    assert torch.equal(model.model.layers[1].self_attn.q_proj.weight, frozen)
    assert model.model.layers[1].mlp_adapter.up_project.weight.abs().sum() > 0


def test_adapters_survive_deepcopy_and_state_dict(random_tiny_model):
    model = random_tiny_model()
    inject_adapters(model, bottleneck=8)
    clone = copy.deepcopy(model)
    with torch.no_grad():
        clone.model.layers[0].mlp_adapter.up_project.bias.add_(0.5)
    ids = torch.randint(0, 2048, (1, 6))
    with torch.no_grad():
        assert not torch.allclose(clone(ids).logits, model(ids).logits)  # the copy uses its own adapters
    assert any("mlp_adapter.up_project.weight" in k for k in model.state_dict())


def test_adapter_bad_input(random_tiny_model):
    with pytest.raises(ValueError, match="bottleneck"):
        inject_adapters(random_tiny_model(), bottleneck=0)
    with pytest.raises(ValueError, match="Llama-style"):
        inject_adapters(torch.nn.Sequential(torch.nn.Linear(4, 4)), bottleneck=2)
    with pytest.raises(ValueError, match="hidden_size"):
        HoulsbyAdapter(0, 4)
    with pytest.raises(ValueError, match="num_layers"):
        adapter_parameter_count(256, 16, -1)


@pytest.mark.parametrize("projection", [False, True])
def test_prefix_count_matches_peft(projection, random_tiny_model):
    from peft import PrefixTuningConfig, get_peft_model

    model = random_tiny_model()
    peft_model = get_peft_model(model, PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=12,
                                                          prefix_projection=projection))
    trainable, _ = peft_model.get_nb_trainable_parameters()
    assert prefix_tuning_parameter_count_for_config(model.config, 12, projection) == trainable
    # 4 kv heads x 32 dims (GQA) = 128 per key/value vector, not the hidden size 256
    if not projection:
        assert trainable == 12 * 4 * 2 * 128


def test_prefix_quoted_figure():
    # The quoted 32 layers x 2 x 20 tokens x 4096 = 5,242,880 holds for full multi-head attention (Llama-2-7B) ...
    assert prefix_tuning_parameter_count(32, 32, 128, 20) == 5_242_880
    # ... and is 4x too large for Llama-3-8B's 8 key/value heads
    assert prefix_tuning_parameter_count(32, 8, 128, 20) == 1_310_720
    with pytest.raises(ValueError, match="num_virtual_tokens"):
        prefix_tuning_parameter_count(32, 8, 128, 0)
