"""Make the shipped prompts: telephony_adapters/media/sounds/prompts/<lang>/<clip>.wav.

Every clip the speech module can name (``telephony_adapters.media.speech.CLIPS``), in
English (espeak-ng voice ``en``, from the clip's text) and Mandarin Chinese (voice
``cmn-latn-pinyin``, from :data:`PINYIN` below: Debian 12's espeak-ng 1.51 reads Chinese
characters with their tone numbers in English, "您" as "nin two", espeak-ng issues #1028
and #1370; pinyin with tone numbers is spoken right), spoken by espeak-ng with fixed
parameters, then by sox: 8 kHz mono 16-bit, silence trimmed at both ends with 50 ms
kept, peak -3 dBFS, no dither (``-D``) and repeatable (``-R``); a tone
(``speech.TONES``: the beep before a voicemail) is a sine made by sox. The same texts with the
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

from telephony_adapters.media.speech import CLIPS, LANGUAGES, TONES, Language  # noqa: E402

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
    "yao": "yao1",
    "jia": "jia1",
    # The call flows' clips (speech._ZH_FLOW has the characters). Third-tone sandhi is
    # written out where espeak-ng does not make it (以井 yi2 jing3); 1 in a menu is yi1.
    "greeting": "huan1 ying2 zhi4 dian4 C T I ke4 fu2 zhong1 xin1.",
    "menu_main": "xiao1 shou4 zi1 xun2 qing3 an4 yi1, shou4 hou4 fu2 wu4 qing3 an4 er4, "
    "liu2 yan2 qing3 an4 jiu3, chong2 ting1 qing3 an4 xing1 hao4 jian4.",
    "invalid_key": "dui4 bu5 qi3, nin2 de5 shu1 ru4 you3 wu4.",
    "no_key": "dui4 bu5 qi3, wo3 men5 mei2 you3 shou1 dao4 nin2 de5 xuan3 ze2.",
    "closed": "gan3 xie4 nin2 de5 lai2 dian4. xian4 zai4 shi4 fei1 gong1 zuo4 shi2 jian1, "
    "qing3 zai4 gong1 zuo4 shi2 jian1 zai4 ci4 lai2 dian4.",
    "callback_offer": "ru2 xu1 wo3 men5 hui2 dian4 bing4 bao3 liu2 nin2 de5 pai2 dui4 "
    "wei4 zhi4, qing3 an4 yi1.",
    "we_will_call_you_at": "wo3 men5 jiang1 hui2 dian4 zhi4 yi3 xia4 hao4 ma3.",
    "confirm_or_other": "que4 ren4 qing3 an4 yi1, shi3 yong4 qi2 ta1 hao4 ma3 qing3 an4 er4.",
    "enter_number": "qing3 shu1 ru4 nin2 de5 dian4 hua4 hao4 ma3, yi2 jing3 hao4 jian4 "
    "jie2 shu4; chong2 xin1 shu1 ru4 qing3 an4 xing1 hao4 jian4.",
    "voicemail_offer": "liu2 yan2 qing3 an4 jiu3.",
    "callback_confirmed": "xie4 xie5, wo3 men5 hui4 gei3 nin2 hui2 dian4, nin2 de5 pai2 dui4 "
    "wei4 zhi4 jiang1 hui4 bao3 liu2. zai4 jian4.",
    "voicemail_prompt": "qing3 zai4 ti2 shi4 yin1 hou4 liu2 yan2, jie2 shu4 qing3 an4 "
    "jing3 hao4 jian4.",
    "message_thanks": "xie4 xie5, nin2 de5 liu2 yan2 yi3 shou1 dao4, wo3 men5 hui4 jin3 "
    "kuai4 gei3 nin2 hui2 dian4.",
    "goodbye": "gan3 xie4 nin2 de5 lai2 dian4, zai4 jian4.",
    "you_are_next": "xia4 yi2 wei4 jiu4 shi4 nin2, qing3 shao1 hou4.",
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


def _tone(name: str, target: Path) -> None:
    """A tone clip (``speech.TONES``): a sine made by sox, 5 ms fades, peak -3 dBFS."""
    hertz, seconds = TONES[name]
    _run(["sox", "-D", "-R", "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
          str(target), "synth", str(seconds), "sine", str(hertz), "fade", "0.005", str(seconds),
          "0.005", "gain", "-n", "-3"])  # fmt: skip


def spoken_text(lang: Language, name: str) -> str:
    """What espeak-ng is given for clip ``name`` of ``lang`` ('' for a tone)."""
    if name in TONES:
        return ""
    if lang == "zh":
        if name not in PINYIN:
            raise SystemExit(f"zh/{name}: no pinyin in deploy/make_prompts.py PINYIN")
        return PINYIN[name]
    return CLIPS[lang][name]


def build_clip(lang: Language, name: str, out_root: Path = OUT) -> Path:
    """Speak clip ``name`` of ``lang`` (or make its tone) into ``out_root/<lang>/<name>.wav``."""
    text = spoken_text(lang, name)
    target = out_root / lang / f"{name}.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    if name in TONES:
        _tone(name, target)
        return target
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
