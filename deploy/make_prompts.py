"""Make the shipped prompts: telephony_adapters/media/sounds/prompts/<lang>/<clip>.wav.

Every clip the speech module can name (``telephony_adapters.media.speech.CLIPS``), in
English (espeak-ng voice ``en``, from the clip's text) and Mandarin Chinese (voice
``cmn-latn-pinyin``, from :data:`PINYIN` below: Debian 12's espeak-ng 1.51 reads Chinese
characters with their tone numbers in English, "您" as "nin two", espeak-ng issues #1028
and #1370; pinyin with tone numbers is spoken right), spoken by espeak-ng with fixed
parameters, then by sox: 8 kHz mono 16-bit, silence trimmed at both ends with 50 ms
kept, peak -3 dBFS, no dither (``-D``) and repeatable (``-R``). The same texts with the
same espeak-ng and sox give the same bytes (tests/telephony_adapters/media/test_prompts.py
rebuilds a clip and compares). Clips of a language folder that the speech module no
longer names are removed. Both tools come from deploy/system-deps.sh.

    python deploy/make_prompts.py [--out DIR] [LANG/CLIP ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not

from telephony_adapters.media.speech import CLIPS, LANGUAGES, Language  # noqa: E402

OUT = ROOT / "telephony_adapters/media/sounds/prompts"
VOICES: dict[Language, str] = {"en": "en", "zh": "cmn-latn-pinyin"}
#: What each Chinese clip says, in pinyin with tone numbers (一 with its tone sandhi
#: where it is inside a phrase: 下一位 yi2, 不到一分钟 bu2 ... yi4).
PINYIN: dict[str, str] = {
    "ling": "ling2",
    "yi": "yi1",
    "er": "er4",
    "liang": "liang3",
    "san": "san1",
    "si": "si4",
    "wu": "wu3",
    "liu": "liu4",
    "qi": "qi1",
    "ba": "ba1",
    "jiu": "jiu3",
    "shi": "shi2",
    "bai": "bai3",
    "qian": "qian1",
    "wan": "wan4",
    "nin_qianmian_haiyou": "nin2 qian2 mian4 hai2 you3",
    "nin_shi_xia_yi_wei": "nin2 shi4 xia4 yi2 wei4",
    "chaoguo": "chao1 guo4",
    "wei": "wei4",
    "nin_dayue_xuyao_dengdai": "nin2 da4 yue1 xu1 yao4 deng3 dai4",
    "nin_xuyao_dengdai": "nin2 xu1 yao4 deng3 dai4",
    "bu_dao_yi_fenzhong": "bu2 dao4 yi4 fen1 zhong1",
    "fenzhong": "fen1 zhong1",
}
#: Speed (words a minute; each Chinese character counts as a word), fixed like the rest.
SPEED: dict[Language, str] = {"en": "150", "zh": "200"}
#: Pitch, amplitude, gap between words: fixed, for the same bytes.
ESPEAK_PARAMS = ("-p", "50", "-a", "100", "-g", "0")
SOX_EFFECTS = ("silence", "1", "0.02", "0.3%", "reverse", "silence", "1", "0.02", "0.3%",
               "reverse", "pad", "0.05", "0.05", "gain", "-n", "-3")  # fmt: skip


def _run(command: list[str]) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SystemExit(
            f"{command[0]} is not installed (run deploy/system-deps.sh as root)"
        ) from None
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: exit {done.returncode}: {done.stderr.strip()}")


def spoken_text(lang: Language, name: str) -> str:
    """What espeak-ng is given for clip ``name`` of ``lang``."""
    if lang == "zh":
        if name not in PINYIN:
            raise SystemExit(f"zh/{name}: no pinyin in deploy/make_prompts.py PINYIN")
        return PINYIN[name]
    return CLIPS[lang][name]


def build_clip(lang: Language, name: str, out_root: Path = OUT) -> Path:
    """Speak clip ``name`` of ``lang`` into ``out_root/<lang>/<name>.wav``."""
    text = spoken_text(lang, name)
    target = out_root / lang / f"{name}.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="prompts-") as work:
        spoken = Path(work) / "espeak.wav"
        voice = ["-v", VOICES[lang], "-s", SPEED[lang], *ESPEAK_PARAMS]
        _run(["espeak-ng", *voice, "-w", str(spoken), "--", text])
        _run(["sox", "-D", "-R", str(spoken), "-r", "8000", "-c", "1", "-b", "16",
              "-e", "signed-integer", str(target), *SOX_EFFECTS])  # fmt: skip
    return target


def build_all(out_root: Path = OUT) -> list[Path]:
    """Every clip of every language; stale clips of a language folder are removed."""
    made: list[Path] = []
    for lang in LANGUAGES:
        for name in sorted(CLIPS[lang]):
            made.append(build_clip(lang, name, out_root))
        for old in (out_root / lang).glob("*.wav"):
            if old.stem not in CLIPS[lang]:
                old.unlink()
    return made


def _parse_only(items: list[str]) -> list[tuple[Language, str]]:
    chosen: list[tuple[Language, str]] = []
    for item in items:
        lang, _, name = item.partition("/")
        if lang not in LANGUAGES or name not in CLIPS[lang]:
            raise SystemExit(f"{item}: not a clip (LANG/CLIP, LANG one of {LANGUAGES})")
        chosen.append((lang, name))
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the language folders")
    parser.add_argument("clips", nargs="*", help="only these clips, as LANG/CLIP (en/twelve)")
    args = parser.parse_args(argv)
    if args.clips:
        made = [build_clip(lang, name, args.out) for lang, name in _parse_only(args.clips)]
    else:
        made = build_all(args.out)
    total = sum(path.stat().st_size for path in made)
    print(f"wrote {len(made)} clips, {total} bytes, under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
