"""scripts/bench.py: a tiny run finishes and its last line is the JSON object scripts read. Figures are not
checked (speed belongs in the bench's output, not in assertions); only that they were measured."""
import json

from scripts.bench import main

HEADLINE = ["train_tok_s_ours", "train_tok_s_hf", "train_ratio", "mfu_bf16", "decode_tok_s_ours", "decode_tok_s_hf",
            "decode_ratio"]


def test_tiny_run_ends_with_the_json_line(tiny_corpus_path, capsys):
    # Smallest shapes that still take every path but compilation (~30 s a model) and the fresh-process RSS
    # (~10 s of imports each): both dtypes, both generators at batch 1 and 8, prefill, packed and unpacked reads.
    main(["--quick", "--presets", "tiny", "--dtypes", "bfloat16,float32", "--compile", "0", "--rss", "0",
          "--reps", "1", "--batch_size", "1", "--seq_len", "16", "--prompt_len", "8", "--new_tokens", "4",
          "--loader_seconds", "0.05", "--data_path", tiny_corpus_path, "--device", "cpu"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in HEADLINE + [k + "_fp32" for k in HEADLINE if k != "mfu_bf16"] + ["mfu_fp32"]:
        assert out[key] > 0, key
    assert out["infer_peak_rss_mb"] is None and out["infer_peak_rss_mb_fp32"] is None  # --rss 0
    assert set(out["train"]) == {"tiny/bfloat16", "tiny/float32"}
    assert set(out["decode"]) == {f"tiny/{d}/b{b}" for d in ("bfloat16", "float32") for b in (1, 8)}
    assert out["decode"]["tiny/float32/b1"]["same_greedy_tokens_row0"]  # same weights, greedy: same tokens
    assert out["loader"]["tiny"]["packed"]["tok_s"] > 0 and len(out["loadavg_start"]) == 3
    if out["cpu_native_bf16"]:  # int8 weights are decoded beside bf16 only where bf16 is native
        assert out["decode_tok_s_ours_int8"] > 0 and out["decode"]["tiny/bfloat16/b8"]["tok_s_ours_int8"] > 0
    else:
        assert out["decode_tok_s_ours_int8"] is None
    assert out["pretrain_hq_epoch"]["minutes"] > 0 and out["datasheet_bf16_tflops"] is None  # CPU: no datasheet


def test_rollout_bench_tiny_run(capsys):
    # scripts/bench_rollout.py: LocalRollout against transformers' generate(), one repetition of a few tokens.
    from scripts.bench_rollout import main as rollout_main
    out = rollout_main(["--preset", "tiny", "--dtypes", "float32", "--batches", "2,3", "--max_new_tokens", "4",
                        "--reps", "1", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert json.loads(printed.strip().splitlines()[-1])["cells"].keys() == {"float32/b2", "float32/b3"}
    assert "greedy tokens equal float32 batch 3" in printed and "| float32 | 3 |" in printed
    for b in (2, 3):
        cell = out["cells"][f"float32/b{b}"]
        assert cell["greedy_equal"] and cell["greedy_equal_rows"] == b  # same weights, greedy: same tokens
        assert cell["tok_s_ours"] > 0 and cell["tok_s_hf"] > 0 and cell["tok_s_ours_sampled"] > 0
        assert cell["tokens_ours"] == cell["tokens_hf"] > 0
    assert len(set(out["prompt_lens"])) > 1  # left padding is exercised
