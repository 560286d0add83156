#!/usr/bin/python3
"""A multi-voice, multi-language speech corpus synthesised with Debian's espeak-ng.

Every speaker says utterances in every language, so speaker and language are
independent labels. A speaker is an espeak-ng voice variant with its own pitch,
speed and a fixed recording channel (a colouring filter and a noise floor): the
cues a contrastive model can use as a shortcut to tell recordings apart.
Utterances are random word sequences from per-language word lists (the words carry
each language's phonotactics; the sequences carry no meaning).

Writes DIR/wav/<speaker>/<language>/<n>.wav (16-bit PCM, espeak-ng's 22.05 kHz) and
DIR/manifest.csv with a header: path,speaker,language,voice_group,split.
voice_group is 0 for the first speakers and 1 for the held-out ones (the
cross-voice probe fits on group 0 and tests on group 1); split holds out a share
of each (speaker, language) cell's utterances. Deterministic in --seed.
"""
import argparse
import io
import os
import random
import subprocess
import sys
import wave

import numpy as np

WORDS = {
    "en": """the house water people little children morning evening garden window together
        always never between because without yesterday tomorrow market river mountain
        letter teacher kitchen yellow purple quickly slowly happy brother sister family
        friendly weather summer winter bread butter cheese apple orange table chair
        street station village city country island forest flower paper pencil music
        picture doctor working walking reading thinking remember beautiful important
        different another nothing something everything question answer number""",
    "de": """das Haus Wasser Leute klein Kinder Morgen Abend Garten Fenster zusammen immer
        niemals zwischen weil ohne gestern morgen Markt Fluss Berg Brief Lehrer Küche
        gelb schnell langsam glücklich Bruder Schwester Familie freundlich Wetter Sommer
        Winter Brot Butter Käse Apfel Tisch Stuhl Straße Bahnhof Dorf Stadt Land Insel
        Wald Blume Papier Bleistift Musik Bild Arzt arbeiten gehen lesen denken erinnern
        schön wichtig verschieden nichts etwas alles Frage Antwort Zahl Mädchen""",
    "es": """la casa agua gente pequeño niños mañana tarde jardín ventana juntos siempre
        nunca entre porque sin ayer mercado río montaña carta maestro cocina amarillo
        rápido despacio feliz hermano hermana familia amable tiempo verano invierno pan
        mantequilla queso manzana naranja mesa silla calle estación pueblo ciudad país
        isla bosque flor papel lápiz música cuadro médico trabajar caminar leer pensar
        recordar hermoso importante diferente nada algo todo pregunta respuesta número""",
    "fr": """la maison eau gens petit enfants matin soir jardin fenêtre ensemble toujours
        jamais entre parce que sans hier demain marché rivière montagne lettre professeur
        cuisine jaune vite lentement heureux frère sœur famille aimable temps été hiver
        pain beurre fromage pomme orange table chaise rue gare village ville pays île
        forêt fleur papier crayon musique tableau médecin travailler marcher lire penser
        souvenir beau important différent rien quelque chose tout question réponse nombre""",
}

# (espeak-ng variant, base pitch 0-99, words per minute)
VOICES = [
    ("m1", 35, 165), ("f1", 70, 150), ("m3", 45, 180), ("f2", 62, 170), ("m7", 28, 150),
    ("f4", 78, 185), ("m2", 52, 140), ("f5", 66, 160), ("m4", 40, 175), ("f3", 74, 145),
]


def channel(rng: np.random.Generator):
    """A speaker's recording channel: a 3-tap colouring filter, a gain and a noise floor."""
    return {"taps": np.array([1.0, rng.uniform(-0.9, 0.9), rng.uniform(-0.4, 0.4)]),
            "noise_db": rng.uniform(-50, -35), "gain": rng.uniform(0.4, 0.9)}


def apply_channel(x: np.ndarray, ch, rng: np.random.Generator) -> np.ndarray:
    y = np.convolve(x, ch["taps"])[: len(x)]
    y *= ch["gain"] / max(float(np.max(np.abs(y))), 1e-9)
    y += rng.normal(0.0, 10 ** (ch["noise_db"] / 20), size=y.shape)
    return np.clip(y, -1.0, 1.0)


def synth(text: str, lang: str, variant: str, pitch: int, speed: int) -> tuple[np.ndarray, int]:
    out = subprocess.run(["espeak-ng", "-v", f"{lang}+{variant}", "-p", str(pitch), "-s", str(speed), "--stdout", text],
                         check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(out)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    return pcm, rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-cell", type=int, default=50, help="utterances per (speaker, language)")
    ap.add_argument("--speakers", type=int, default=len(VOICES))
    ap.add_argument("--held-out-speakers", type=int, default=4, help="voice_group 1: the last N speakers")
    ap.add_argument("--test-share", type=float, default=0.2, help="utterances per cell in split test")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.speakers > len(VOICES):
        sys.exit(f"--speakers {a.speakers}: at most {len(VOICES)}")
    if os.path.exists(os.path.join(a.out, "manifest.csv")):
        print(f"{a.out}/manifest.csv exists: keeping the corpus")
        return 0
    rng = np.random.default_rng(a.seed)
    words = {lang: w.split() for lang, w in WORDS.items()}
    rows = []
    total_s = 0.0
    for s in range(a.speakers):
        variant, pitch, speed = VOICES[s]
        ch = channel(rng)
        for lang in WORDS:
            cell = os.path.join("wav", f"s{s}", lang)
            os.makedirs(os.path.join(a.out, cell), exist_ok=True)
            n_test = round(a.test_share * a.per_cell)
            for u in range(a.per_cell):
                n = int(rng.integers(6, 11))
                text = " ".join(rng.choice(words[lang], size=n))
                # Per-utterance prosody jitter around the speaker's own pitch and speed.
                p = int(np.clip(pitch + rng.integers(-5, 6), 0, 99))
                sp = int(speed + rng.integers(-10, 11))
                x, rate = synth(text, lang, variant, p, sp)
                y = apply_channel(x, ch, rng)
                rel = os.path.join(cell, f"{u}.wav")
                with wave.open(os.path.join(a.out, rel), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(rate)
                    w.writeframes((y * 32767).astype("<i2").tobytes())
                total_s += len(y) / rate
                group = 1 if s >= a.speakers - a.held_out_speakers else 0
                rows.append(f"{rel},s{s},{lang},{group},{'test' if u < n_test else 'train'}")
        print(f"speaker s{s} ({variant}, pitch {pitch}, {speed} wpm): {a.per_cell * len(WORDS)} utterances", flush=True)
    tmp = os.path.join(a.out, "manifest.csv.tmp")
    with open(tmp, "w") as f:
        f.write("path,speaker,language,voice_group,split\n")
        f.write("\n".join(rows) + "\n")
    os.replace(tmp, os.path.join(a.out, "manifest.csv"))
    print(f"wrote {len(rows)} utterances, {total_s / 3600:.2f} hours, to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
