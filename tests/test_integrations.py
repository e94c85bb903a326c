"""Hugging Face plug-in and swap on real (tiny, randomly initialised) transformers models: nothing is downloaded."""

from __future__ import annotations

import pytest
import torch
from conftest import import_torchvision

import actlab
from actlab.swap import find_activations

import_torchvision()  # transformers imports it where installed; a CPU torch needs its two schemas declared first
transformers = pytest.importorskip("transformers")


def _llama(hidden_act: str = "silu"):
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2, hidden_act=hidden_act)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def test_an_actlab_string_in_hidden_act_survives_save_and_reload(tmp_path):
    from actlab.integrations.transformers import register

    register()
    model = _llama("actlab:swish(beta=1.5, trainable=True)")
    acts = [m for m in model.modules() if isinstance(m, actlab.nn.Swish)]
    assert len(acts) == 2 and all(float(a.beta) == 1.5 for a in acts)
    with torch.no_grad():
        acts[0].beta.fill_(2.0)  # a trained value: it must come back with the weights
    ids = torch.randint(0, 64, (2, 7))
    before = model(ids).logits
    model.save_pretrained(tmp_path)
    loaded = transformers.LlamaForCausalLM.from_pretrained(tmp_path).eval()
    assert loaded.config.hidden_act == "actlab:swish(beta=1.5, trainable=True)"
    torch.testing.assert_close(loaded(ids).logits, before)
    assert float(loaded.model.layers[0].mlp.act_fn.beta) == 2.0


def test_swap_updates_hidden_act_so_a_reload_keeps_it(tmp_path):
    model = _llama()
    assert actlab.swap(model, "gelu") == 2
    assert model.config.hidden_act == "actlab:gelu"
    ids = torch.randint(0, 64, (2, 5))
    before = model(ids).logits
    model.save_pretrained(tmp_path)
    loaded = transformers.LlamaForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded.model.layers[1].mlp.act_fn, actlab.nn.GELU)
    torch.testing.assert_close(loaded(ids).logits, before)


def test_a_partial_swap_leaves_the_config_and_says_so():
    model = _llama()
    with pytest.warns(UserWarning, match="config.hidden_act was left"):
        assert actlab.swap(model, "gelu", where="model.layers.0.*") == 1
    assert model.config.hidden_act == "silu"


def test_bert_keeps_its_pooler_tanh():
    config = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32)
    model = transformers.BertModel(config).eval()
    roles = {s.path: s.role for s in find_activations(model)}
    assert roles["pooler.activation"] == "output"
    assert sum(r == "hidden" for r in roles.values()) == 2  # one GELU per layer
    assert actlab.swap(model, "mish") == 2
    assert isinstance(model.pooler.activation, torch.nn.Tanh) and model.config.hidden_act == "actlab:mish"
    out = model(torch.randint(0, 64, (1, 6)))
    assert out.pooler_output.abs().max() <= 1  # still a tanh
