"""The word record every OCR reader produces, and the result of the OCR step for one image."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class OcrWord:
    """One word read in an image: text, confidence (0-100, every reader on this scale), its box in the
    original image's pixel coordinates, its line, and the reader that produced it."""

    text: str
    confidence: float
    left: int
    top: int
    width: int
    height: int
    block: int = 0
    paragraph: int = 0
    line: int = 0
    reader: str = "tesseract"

    @property
    def line_key(self) -> tuple[int, int, int]:
        return (self.block, self.paragraph, self.line)

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


@dataclass
class OcrResult:
    """Cleaned text plus the words it was made of; `raw_text` is the merged text before cleaning.
    `readers` names the readers whose words were merged (in order); `errors` the readers that failed."""

    text: str
    raw_text: str
    words: list[OcrWord] = field(default_factory=list)
    readers: tuple[str, ...] = ("tesseract",)
    errors: dict[str, str] = field(default_factory=dict)  # reader -> why it failed on this image

    @property
    def confidence(self) -> float:
        """Mean confidence (0-100) of the kept words, 0 when there are none."""
        return sum(w.confidence for w in self.words) / len(self.words) if self.words else 0.0

    def words_as_dicts(self) -> list[dict]:
        return [asdict(w) for w in self.words]

    def words_by_reader(self) -> dict[str, int]:
        """How many kept words each reader contributed."""
        counts = dict.fromkeys(self.readers, 0)
        for word in self.words:
            counts[word.reader] = counts.get(word.reader, 0) + 1
        return counts
