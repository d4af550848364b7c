"""Worker for the multi-process tests (DDP, DeepSpeed), launched as
`torchrun --nproc_per_node N tests/trainer/ddp_check.py --result R.json [engine flags]`.

Trains a pretrain model with the shared engine (DDP, or DeepSpeed with --deepspeed), then all-gathers every rank's
flattened parameters and has rank 0 write a JSON result the test reads: per-rank max |param - rank 0's param|,
the engine's summary, and (DeepSpeed) what deepspeed.initialize really returned; rank 0's flattened parameters go
to {result}.params.pt.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main():
    import torch
    import torch.distributed as dist

    from dataset.lm_dataset import PretrainDataset
    from model.tokenizer import load_tokenizer
    from trainer import engine

    parser = engine.build_parser("ddp/deepspeed check", device="cpu", dtype="float32")
    parser.add_argument("--result", required=True)
    parser.add_argument("--sgd", action="store_true",
                        help="plain SGD instead of AdamW: the update is the gradient, so its scale is checked too")
    parser.add_argument("--crash_once", default=None,
                        help="marker file: if it does not exist yet, rank 1 creates it and dies at --crash_at")
    parser.add_argument("--crash_at", type=int, default=0, help="the micro-batch (1-based) rank 1 dies at")
    parser.add_argument("--freeze_at", type=int, default=0,
                        help="the micro-batch (1-based) at which rank 1 hangs (sleeps without end): a frozen peer")
    args = parser.parse_args()
    if args.sgd:
        engine.build_optimizer = lambda model, lr, weight_decay, device: torch.optim.SGD(model.parameters(), lr=lr)

    seen = {}
    if args.deepspeed:
        # DeepSpeed's CPU accelerator JIT-compiles a shared-memory all-reduce op on first use (minutes on a small
        # box, cached under TORCH_EXTENSIONS_DIR afterwards). It is only a faster path for collectives; without it
        # DeepSpeed uses torch.distributed (gloo) directly, which is what this check needs.
        import deepspeed.ops
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
        # record what the engine really got back from DeepSpeed
        real_init = engine._deepspeed_init

        def spy(run, model, optimizer):
            model, optimizer, ds = real_init(run, model, optimizer)
            seen.update(engine_type=f"{type(ds).__module__}.{type(ds).__name__}",
                        optimizer_type=f"{type(optimizer).__module__}.{type(optimizer).__name__}",
                        basic_optimizer_type=type(getattr(optimizer, "optimizer", optimizer)).__name__,
                        zero_stage=int(ds.zero_optimization_stage()),
                        dp_world_size=int(ds.dp_world_size))
            return model, optimizer, ds

        engine._deepspeed_init = spy

    run = engine.setup(args, stage="pretrain")
    tok = load_tokenizer(args.tokenizer_dir)
    data = PretrainDataset(args.data_path, tok, args.max_seq_len)
    model = run.build_model(vocab_size=len(tok))
    loss_fn = None
    if args.freeze_at and run.rank == 1:
        import time

        from trainer.losses import CausalLMLoss

        class Freeze(CausalLMLoss):
            calls = 0

            def __call__(self, model, batch):
                Freeze.calls += 1
                if Freeze.calls == args.freeze_at:
                    # a hang, not SIGSTOP: a stopped process ignores torchrun's SIGTERM and costs its 30 s grace
                    # before SIGKILL; to rank 0 both are a peer that never reaches the next collective
                    time.sleep(10 ** 6)
                return super().__call__(model, batch)

        loss_fn = Freeze()
    if args.crash_once and run.rank == 1 and not os.path.exists(args.crash_once):
        from trainer.losses import CausalLMLoss

        class DieOnce(CausalLMLoss):  # a worker killed mid-run (the others then fail their collective)
            calls = 0

            def __call__(self, model, batch):
                DieOnce.calls += 1
                if DieOnce.calls == args.crash_at:
                    open(args.crash_once, "w").close()
                    os._exit(17)
                return super().__call__(model, batch)

        loss_fn = DieOnce()
    summary = engine.train(run, model, data, loss_fn)

    flat = torch.cat([p.detach().float().flatten().cpu() for p in model.parameters()])
    world = dist.get_world_size() if dist.is_initialized() else 1
    gathered = [torch.empty_like(flat) for _ in range(world)]
    if world > 1:
        dist.all_gather(gathered, flat)
    else:
        gathered = [flat]
    if run.is_main:
        result = {"world_size": world, "max_abs_diff": [float((g - gathered[0]).abs().max()) for g in gathered],
                  "param_sum": [float(g.double().sum()) for g in gathered], "n_params": flat.numel(),
                  "summary": {k: v for k, v in summary.items() if isinstance(v, (int, float, str, type(None)))},
                  **seen}
        torch.save(gathered[0], args.result + ".params.pt")
        tmp = args.result + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f)
        os.replace(tmp, args.result)
    engine.teardown(run)


if __name__ == "__main__":
    from worker_exit import run_and_exit  # the folder of this script is on sys.path
    run_and_exit(main)
