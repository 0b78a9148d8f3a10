"""coursekit.scratch.lora against peft's LoRA layer."""
import copy

import pytest
import torch
from torch import nn

from coursekit.scratch.lora import LoRALinear, count_trainable_parameters, inject_lora, lora_parameter_count


def peft_lora(model, r, alpha, targets, dropout=0.0):
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, lora_dropout=dropout, bias="none",
                     task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)


def copy_peft_weights_into_scratch(peft_model, scratch_model):
    """Give every scratch LoRALinear the A and B of the peft layer at the same place."""
    copied = 0
    peft_modules = dict(peft_model.base_model.model.named_modules())
    for name, module in scratch_model.named_modules():
        if isinstance(module, LoRALinear):
            layer = peft_modules[name]
            with torch.no_grad():
                module.lora_A.copy_(layer.lora_A["default"].weight)
                module.lora_B.copy_(layer.lora_B["default"].weight)
            copied += 1
    return copied


def test_layer_starts_as_base_and_shapes():
    torch.manual_seed(0)
    base = nn.Linear(32, 48)
    layer = LoRALinear(base, r=4, alpha=8)
    assert layer.lora_A.shape == (4, 32) and layer.lora_B.shape == (48, 4)
    assert layer.scaling == 2.0
    assert torch.count_nonzero(layer.lora_B) == 0 and torch.count_nonzero(layer.lora_A) > 0
    x = torch.randn(5, 32)
    assert torch.equal(layer(x), base(x))
    assert not base.weight.requires_grad and layer.lora_A.requires_grad
    assert sum(p.numel() for p in layer.parameters() if p.requires_grad) == lora_parameter_count(32, 48, 4) == 320


def test_same_outputs_as_peft_layer_given_same_A_and_B():
    from peft import LoraConfig
    from peft.tuners.lora import Linear as PeftLoraLinear

    torch.manual_seed(1)
    base = nn.Linear(64, 96)
    ours = LoRALinear(copy.deepcopy(base), r=8, alpha=16)
    theirs = PeftLoraLinear(copy.deepcopy(base), "default", LoraConfig(r=8, lora_alpha=16), r=8, lora_alpha=16)
    with torch.no_grad():
        ours.lora_B.normal_(std=0.1)
        theirs.lora_A["default"].weight.copy_(ours.lora_A)
        theirs.lora_B["default"].weight.copy_(ours.lora_B)
    x = torch.randn(3, 7, 64)
    assert theirs.scaling["default"] == ours.scaling
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)
    # and the merged weights agree
    torch.testing.assert_close(ours.delta_weight(), theirs.get_delta_weight("default"), rtol=0, atol=1e-7)


def test_merge_equals_unmerged_and_unmerge_restores():
    torch.manual_seed(2)
    base = nn.Linear(40, 24)
    original = base.weight.detach().clone()
    layer = LoRALinear(base, r=3, alpha=6)
    with torch.no_grad():
        layer.lora_B.normal_(std=0.2)
    x = torch.randn(10, 40)
    before = layer(x)
    layer.merge()
    assert layer.merged
    assert not torch.allclose(base.weight, original)
    torch.testing.assert_close(layer(x), before, rtol=0, atol=1e-5)
    torch.testing.assert_close(base(x), before, rtol=0, atol=1e-5)  # one matmul now
    layer.unmerge()
    torch.testing.assert_close(base.weight, original, rtol=0, atol=1e-6)
    torch.testing.assert_close(layer(x), before, rtol=0, atol=1e-5)


@pytest.mark.parametrize("targets", [["q_proj", "v_proj"], "all-linear"])
def test_inject_lora_trainable_count_matches_peft(targets, random_tiny_model):
    ours = inject_lora(random_tiny_model(), r=8, alpha=16, target_modules=targets)
    theirs = peft_lora(random_tiny_model(), 8, 16, targets)
    trainable, _ = theirs.get_nb_trainable_parameters()
    assert count_trainable_parameters(ours) == trainable
    # q_proj, v_proj on the tiny model: 4 layers * (8*(256+256) + 8*(256+128)) = 28,672
    if targets == ["q_proj", "v_proj"]:
        assert trainable == 28_672
    assert sum(isinstance(m, LoRALinear) for m in ours.modules()) == len(
        [n for n, p in theirs.named_parameters() if "lora_A" in n])


def test_inject_lora_model_outputs_match_peft(random_tiny_model):
    ours = inject_lora(random_tiny_model(), r=4, alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    theirs = peft_lora(random_tiny_model(), 4, 8, ["q_proj", "k_proj", "v_proj", "o_proj"])
    with torch.no_grad():
        for n, p in theirs.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.05)
    assert copy_peft_weights_into_scratch(theirs, ours) == 16
    ids = torch.randint(0, 2048, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, theirs(ids).logits, rtol=0, atol=1e-5)


def _train(model, steps, seed):
    """A few AdamW steps cycling over two fixed random batches (memorisable); returns the loss curve."""
    torch.manual_seed(seed)
    pair = [torch.randint(0, 2048, (4, 16)) for _ in range(2)]
    batches = [pair[i % 2] for i in range(steps)]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-3)
    model.train()
    losses = []
    for ids in batches:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    return losses


def test_short_training_tracks_peft_loss_curve(random_tiny_model):
    theirs = peft_lora(random_tiny_model(), 8, 16, ["q_proj", "v_proj"])
    ours = inject_lora(random_tiny_model(), r=8, alpha=16, target_modules=["q_proj", "v_proj"])
    copy_peft_weights_into_scratch(theirs, ours)
    a = _train(ours, steps=12, seed=3)
    b = _train(theirs, steps=12, seed=3)
    assert a[-1] < a[0] - 0.05  # it learned something (the two batches repeat)
    for x, y in zip(a, b):
        assert abs(x - y) < 1e-3, (a, b)


@pytest.mark.parametrize("kwargs, message", [
    (dict(r=0, alpha=8, target_modules=["q_proj"]), "rank"),
    (dict(r=-2, alpha=8, target_modules=["q_proj"]), "rank"),
    (dict(r=4, alpha=0, target_modules=["q_proj"]), "alpha"),
    (dict(r=4, alpha=-1.0, target_modules=["q_proj"]), "alpha"),
    (dict(r=4, alpha=8, target_modules=["query_key_value"]), "not found"),
    (dict(r=4, alpha=8, target_modules=[]), "target_modules"),
])
def test_bad_input(kwargs, message, random_tiny_model):
    with pytest.raises(ValueError, match=message):
        inject_lora(random_tiny_model(), **kwargs)


def test_bad_layer_input():
    with pytest.raises(ValueError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(3, 3, 1), r=2, alpha=4)
    with pytest.raises(ValueError, match="dropout"):
        LoRALinear(nn.Linear(8, 8), r=2, alpha=4, dropout=1.5)
    with pytest.raises(ValueError, match="larger"):
        LoRALinear(nn.Linear(8, 4), r=5, alpha=4)
