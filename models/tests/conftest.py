import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from nib_models.fixtures import SAMPLE_TEXT
    from nib_models.tokenizer import train_tokenizer

    return train_tokenizer([SAMPLE_TEXT] * 3, vocab_size=400)
