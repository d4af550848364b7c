"""Full-parameter supervised fine-tuning on chats ({"conversations": [...]} lines); loss on assistant turns only.

    python train_full_sft.py                                   # from out/pretrain_512.pth on dataset/sft_mini_512.jsonl
    python train_full_sft.py --data_path out/world/sft.jsonl --preset tiny
"""
from dataset.lm_dataset import SFTDataset
from trainer import engine
from trainer.data import open_dataset, require_data, tokenizer_for
from trainer.losses import CausalLMLoss


def main():
    parser = engine.build_parser(__doc__, epochs=2, batch_size=16, learning_rate=5e-7, accumulation_steps=1,
                                 max_seq_len=512, data_path="dataset/sft_mini_512.jsonl", from_weight="pretrain",
                                 save_weight="full_sft", log_interval=100, save_interval=1000)
    args = parser.parse_args()
    require_data(args, "sft.jsonl")

    run = engine.setup(args, stage="full_sft")
    tokenizer = tokenizer_for(args)
    data = open_dataset(SFTDataset, args, tokenizer)
    model = run.build_model(vocab_size=len(tokenizer))
    engine.train(run, model, data, CausalLMLoss())
    engine.teardown(run)


if __name__ == "__main__":
    main()
