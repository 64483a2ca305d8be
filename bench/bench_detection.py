"""Detection and false alarms on the shipped corpus, modelshield beside picklescan (the Hub's scanner).

Builds the malicious techniques (fixtures/pickle_attacks.py) and the benign artefacts from real
libraries (fixtures/benign_models.py) into a temp folder, scans each file with both tools, and
prints misses and false alarms. Then the loader-view cases of issue 20 (fixtures/loader_views.py:
polyglots, sniff classes, names; each proven under its real loader by tests/views) per defect
class, and the real checkpoints that used to be false alarms (fixtures/benign_checkpoints.py).

    python bench/bench_detection.py
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fixtures import benign_checkpoints, benign_models, loader_views, pickle_attacks  # noqa: E402

from modelshield import Policy, Severity, Verdict, scan  # noqa: E402


def picklescan_flags(path: Path) -> bool | None:
    """True if picklescan reports a dangerous import; None if it is not installed."""
    try:
        from picklescan.scanner import scan_file_path
    except ImportError:
        return None
    result = scan_file_path(str(path))
    return result.issues_count > 0 or result.infected_files > 0


def main() -> None:
    policy = Policy.from_mapping({"allow": {"globals": {"fixtures.tiny_net.TinyNet": "the corpus's own test class"}}})
    with tempfile.TemporaryDirectory() as tmp:
        bad_dir, good_dir = Path(tmp, "malicious"), Path(tmp, "benign")
        techniques = pickle_attacks.build_all(bad_dir)
        benign = benign_models.build_all(good_dir)
        ours_missed, theirs_missed, theirs_unavailable = [], [], False
        for t in techniques:
            verdict = scan(str(bad_dir / t.file), policy=policy).verdict
            if verdict is not Verdict.UNSAFE:
                ours_missed.append(t.id)
            flagged = picklescan_flags(bad_dir / t.file)
            theirs_unavailable |= flagged is None
            if flagged is False:
                theirs_missed.append(t.id)
        ours_fp, theirs_fp = [], []
        for b in benign:
            report = scan(str(good_dir / b.file), policy=policy)
            if report.verdict is not Verdict.CLEAN or any(
                    f.severity > Severity.INFO for _, _, f in report.all_findings()):
                ours_fp.append(b.file)
            if picklescan_flags(good_dir / b.file):
                theirs_fp.append(b.file)
    n, m = len(techniques), len(benign)
    print(f"malicious techniques: {n}   benign artefacts from real libraries: {m}")
    print(f"{'tool':<22} {'missed':>8} {'false alarms':>14}")
    print(f"{'modelshield':<22} {len(ours_missed):>5}/{n:<3} {len(ours_fp):>10}/{m:<3}")
    if theirs_unavailable:
        print("picklescan: not installed")
    else:
        print(f"{'picklescan 1.0.5':<22} {len(theirs_missed):>5}/{n:<3} {len(theirs_fp):>10}/{m:<3}")
    for label, items in (("modelshield missed", ours_missed), ("modelshield false alarms", ours_fp),
                         ("picklescan missed", theirs_missed)):
        if items:
            print(f"{label}: {', '.join(items)}")
    issue20(policy)


def issue20(policy: Policy) -> None:
    """Loader views (classes 1-3: a miss is any verdict but unsafe) and the former false alarms."""
    with tempfile.TemporaryDirectory() as tmp:
        views_dir = Path(tmp, "views")
        cases = loader_views.build_all(views_dir)
        print("\nissue 20 loader views (missed = not unsafe; inconclusive counted as missed)")
        for cls in sorted({c.cls for c in cases}):
            group = [c for c in cases if c.cls == cls]
            missed = [c.id for c in group if scan(str(views_dir / c.file), policy=policy).verdict is not Verdict.UNSAFE]
            print(f"  class {cls}: missed {len(missed)}/{len(group)}" + (f" ({', '.join(missed)})" if missed else ""))
        folders = benign_checkpoints.build_all(Path(tmp, "benign"))
        flagged = [name for name, folder in folders.items()
                   if scan(str(folder), policy=policy).verdict is not Verdict.CLEAN]
        print(f"  real checkpoints that were false alarms: flagged {len(flagged)}/{len(folders)}"
              + (f" ({', '.join(flagged)})" if flagged else ""))


if __name__ == "__main__":
    main()
