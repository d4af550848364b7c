"""The Hugging Face face of MiniMindForCausalLM: the same modules, weights and forward, as a transformers
PreTrainedModel + GenerationMixin, for what needs one: transformers' generate(), and the MoE export
(save_pretrained copies this file and model_minimind.py beside the weights; AutoModelForCausalLM loads them with
trust_remote_code=True).

It lives apart from model_minimind.py because importing PreTrainedModel/GenerationMixin costs 130-160 MB of RSS
(torch.distributed.tensor, torch._dynamo, sympy, scipy, accelerate…), which the chat, server and web demo never need.
Only relative imports below: transformers copies those files along with this one on save_pretrained.
"""
import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel

from .model_minimind import MiniMindConfig, MiniMindForCausalLM, MiniMindModel


class MiniMindForCausalLMHF(PreTrainedModel, GenerationMixin):
    config_class = MiniMindConfig
    base_model_prefix = "model"
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    _no_split_modules = ["DecoderLayer"]
    _supports_sdpa = True

    def __init__(self, config: MiniMindConfig):
        super().__init__(config)
        self.model = MiniMindModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()  # runs _init_weights over every module, then ties lm_head to the embedding
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    # One network, one definition: the core class's methods work unchanged on this class's identical attributes.
    _init_weights = MiniMindForCausalLM._init_weights
    get_input_embeddings = MiniMindForCausalLM.get_input_embeddings
    set_input_embeddings = MiniMindForCausalLM.set_input_embeddings
    forward = MiniMindForCausalLM.forward


def to_hf(model: MiniMindForCausalLM) -> MiniMindForCausalLMHF:
    """The Hugging Face class around `model`'s own modules: no copy, the two share every tensor (training one
    changes the other; so does .to(dtype))."""
    with torch.device("meta"):  # the HF class's own modules are thrown away below: do not allocate or init them
        hf = MiniMindForCausalLMHF(model.config)
    hf.model, hf.lm_head = model.model, model.lm_head
    return hf.train(model.training)

