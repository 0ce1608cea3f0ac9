"""Reader/writer for LFW ``pairs.txt`` verification protocol files (Huang et al. 2007), no Lightning imports.

Format: a header line, then pair lines.

* Header ``S N`` (View 2, ``pairs.txt``: ``10 300``): S sets, each N "same" lines followed by N "different"
  lines. Header ``N`` (View 1, ``pairsDevTrain.txt``: ``1100``): one set.
* Same line: ``name n1 n2`` — images n1 and n2 of ``name``. Different line: ``name1 n1 name2 n2``.
  Image numbers are 1-based as in LFW (``Aaron_Peirsol 1 2`` -> Aaron_Peirsol_0001.jpg, Aaron_Peirsol_0002.jpg).

Fields are separated by whitespace (tabs in the original files). The set index of each line is its fold.
:func:`pair_paths` maps names/numbers to files with a pattern, ``"{name}/{name}_{num:04d}.jpg"`` for LFW.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence


@dataclass(frozen=True)
class PairRecord:
    name1: str
    num1: int
    name2: str
    num2: int
    same: bool
    fold: int
    line: int  # 1-based line number in the file (0 for records not read from a file)


def _int(tok: str, path: Path, lineno: int, what: str) -> int:
    try:
        v = int(tok)
    except ValueError:
        raise ValueError(f"{path}:{lineno}: {what} must be an integer, got {tok!r}") from None
    return v


def read_lfw_pairs(path: str | Path) -> list[PairRecord]:
    """Parse an LFW pairs file; ValueError naming the file and line on any deviation from the format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LFW pairs file {path} does not exist")
    lines = [(i + 1, ln.split()) for i, ln in enumerate(path.read_text().splitlines())]
    lines = [(i, toks) for i, toks in lines if toks]
    if not lines:
        raise ValueError(f"{path}: empty pairs file; expected a header 'S N' (e.g. '10 300') then pair lines")
    hline, header = lines[0]
    if len(header) == 2:
        sets, n = _int(header[0], path, hline, "header set count"), _int(header[1], path, hline, "header pair count")
    elif len(header) == 1:
        sets, n = 1, _int(header[0], path, hline, "header pair count")
    else:
        raise ValueError(f"{path}:{hline}: header must be 'S N' (sets, pairs per set and kind, e.g. '10 300') or 'N', "
                         f"got {' '.join(header)!r}")
    if sets < 1 or n < 1:
        raise ValueError(f"{path}:{hline}: header counts must be >= 1, got sets={sets}, n={n}")
    body = lines[1:]
    if len(body) != 2 * sets * n:
        raise ValueError(f"{path}: header '{' '.join(header)}' announces {sets} sets x ({n} same + {n} different) = "
                         f"{2 * sets * n} pair lines, found {len(body)}")
    out: list[PairRecord] = []
    for pos, (lineno, toks) in enumerate(body):
        fold, within = divmod(pos, 2 * n)
        want_same = within < n
        if len(toks) == 3:
            rec = PairRecord(toks[0], _int(toks[1], path, lineno, "image number"), toks[0],
                             _int(toks[2], path, lineno, "image number"), True, fold, lineno)
        elif len(toks) == 4:
            rec = PairRecord(toks[0], _int(toks[1], path, lineno, "image number"), toks[2],
                             _int(toks[3], path, lineno, "image number"), False, fold, lineno)
        else:
            raise ValueError(f"{path}:{lineno}: expected 'name n1 n2' (same) or 'name1 n1 name2 n2' (different), "
                             f"got {len(toks)} fields: {' '.join(toks)!r}")
        if rec.same != want_same:
            raise ValueError(f"{path}:{lineno}: set {fold + 1} should have its {n} same lines first, then {n} "
                             f"different lines; found a {'same' if rec.same else 'different'} line at position "
                             f"{within + 1} of the set")
        if not rec.same and rec.name1 == rec.name2:
            raise ValueError(f"{path}:{lineno}: 'different' pair names the same person {rec.name1!r} twice")
        out.append(rec)
    return out


def write_lfw_pairs(path: str | Path, records: Sequence[PairRecord]) -> None:
    """Write records (ordered by fold, same before different inside a fold, equal counts) as an LFW pairs file."""
    folds = sorted({r.fold for r in records})
    per = [[r for r in records if r.fold == f] for f in folds]
    n_same = {sum(r.same for r in rs) for rs in per}
    n_diff = {sum(not r.same for r in rs) for rs in per}
    if len(n_same) != 1 or n_same != n_diff:
        raise ValueError(f"LFW pairs files need the same number of same and different pairs in every fold, got "
                         f"same counts {sorted(n_same)} and different counts {sorted(n_diff)}")
    lines = [f"{len(folds)}\t{n_same.pop()}"]
    for rs in per:
        for r in [r for r in rs if r.same] + [r for r in rs if not r.same]:
            lines.append(f"{r.name1}\t{r.num1}\t{r.num2}" if r.same else f"{r.name1}\t{r.num1}\t{r.name2}\t{r.num2}")
    Path(path).write_text("\n".join(lines) + "\n")


def pair_paths(records: Iterable[PairRecord], root: str | Path, pattern: str = "{name}/{name}_{num:04d}.jpg",
               pairs_file: str | Path = "pairs file") -> list[tuple[Path, Path, bool]]:
    """Files of each pair: ``root / pattern.format(name=..., num=...)``. Pairs naming missing files are not
    skipped (that would change the protocol): one FileNotFoundError gives their count and the first six with their
    pairs-file lines, the first as ``<pairs file>:<line>: pair names <name> <num>, but <file> does not exist``."""
    root = Path(root)
    out, missing = [], []
    for r in records:
        files = []
        for name, num in ((r.name1, r.num1), (r.name2, r.num2)):
            try:
                f = root / pattern.format(name=name, num=num)
            except (KeyError, IndexError, ValueError) as e:
                raise ValueError(f"pair_pattern {pattern!r} must use only {{name}} and {{num}} fields: {e}") from None
            if not f.is_file():
                missing.append((r.line, name, num, f))
            files.append(f)
        out.append((files[0], files[1], r.same))
    if missing:
        line, name, num, f = missing[0]
        more = "".join(f", line {ln}: {g.name}" for ln, _, _, g in missing[1:6]) + (" ..." if len(missing) > 6 else "")
        raise FileNotFoundError(f"{pairs_file}:{line}: pair names {name} {num}, but {f} does not exist (pattern "
                                f"{pattern!r} under {root}); {len(missing)} missing image(s) in all{more}; expected "
                                f"every image a pair names to exist (pairs are never skipped: the protocol would change)")
    return out
