"""Pretraining: next-token prediction on plain text ({"text": ...} lines).

    python train_pretrain.py                                   # MiniMind2-small on dataset/pretrain_hq.jsonl
    torchrun --nproc_per_node 2 train_pretrain.py              # DDP
    python train_pretrain.py --data_path out/world/pretrain.jsonl --preset tiny   # the embedded world
"""
from dataset.lm_dataset import PretrainDataset
from trainer import engine
from trainer.data import open_dataset, require_data, tokenizer_for
from trainer.losses import CausalLMLoss


def main():
    parser = engine.build_parser(__doc__, epochs=1, batch_size=32, learning_rate=5e-4, accumulation_steps=8,
                                 max_seq_len=512, data_path="dataset/pretrain_hq.jsonl", from_weight="none",
                                 log_interval=100, save_interval=1000)
    parser.add_argument("--packing", type=int, choices=(0, 1), default=0,
                        help="concatenate documents into full windows (no padding)")
    args = parser.parse_args()
    require_data(args, "pretrain.jsonl")

    run = engine.setup(args, stage="pretrain")
    tokenizer = tokenizer_for(args)
    data = open_dataset(PretrainDataset, args, tokenizer, packing=bool(args.packing))
    model = run.build_model(vocab_size=len(tokenizer))
    engine.train(run, model, data, CausalLMLoss())
    engine.teardown(run)


if __name__ == "__main__":
    main()
