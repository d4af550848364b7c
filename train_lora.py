"""LoRA fine-tuning: freeze the model, train low-rank adapters on chats, save only the adapters.

    python train_lora.py                      # from out/full_sft_512.pth on dataset/lora_identity.jsonl
                                              # → out/lora/lora_identity_512.pth (a few hundred KB)
    python eval_model.py --lora_weight lora_identity      # chat with base + adapter
"""
from dataset.lm_dataset import SFTDataset
from model.model_lora import DEFAULT_TARGETS, apply_lora, lora_state_dict
from trainer import engine
from trainer.data import open_dataset, require_data, tokenizer_for
from trainer.losses import CausalLMLoss


def main():
    parser = engine.build_parser(__doc__, epochs=50, batch_size=32, learning_rate=1e-4, accumulation_steps=1,
                                 max_seq_len=512, data_path="dataset/lora_identity.jsonl", from_weight="full_sft",
                                 log_interval=10, save_interval=1000, weight_decay=0.0)
    parser.add_argument("--lora_name", default="lora_identity", help="adapter file: out/lora/{name}_{hidden}.pth")
    parser.add_argument("--lora_rank", type=int, default=8)
    parser.add_argument("--lora_alpha", type=float, default=16)
    parser.add_argument("--lora_dropout", type=float, default=0.0)
    parser.add_argument("--lora_targets", default=",".join(DEFAULT_TARGETS), help="comma-separated Linear names")
    args = parser.parse_args()
    require_data(args, "lora_identity.jsonl")

    run = engine.setup(args, stage="lora", save_weight=f"lora/{args.lora_name}")
    tokenizer = tokenizer_for(args)
    data = open_dataset(SFTDataset, args, tokenizer)
    model = apply_lora(run.build_model(vocab_size=len(tokenizer)), args.lora_rank, args.lora_alpha,
                       args.lora_dropout, tuple(args.lora_targets.split(",")))
    engine.train(run, model, data, CausalLMLoss(), weights_fn=lora_state_dict)
    engine.teardown(run)


if __name__ == "__main__":
    main()
