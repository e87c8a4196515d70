"""The hostile-message corpus through the pure core: each message gets the outcome its line names, the
bodies the SQS server refuses at send time included."""

import pytest

from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.core.transform import build_batch
from logins_pipeline_tests.conftest import as_messages
from logins_pipeline_tests.corpus import load_corpus, pii_values
from logins_pipeline_tests.unit.test_transform import REASONS

KEY = MaskingKey.from_secret(bytes(range(32)))
CORPUS = load_corpus()


def test_corpus_covers_every_outcome():
    assert len(CORPUS) >= 60
    assert len({case.name for case in CORPUS}) == len(CORPUS)
    assert {case.expect for case in CORPUS} == REASONS - {"expired"} | {"row"}  # expired: a date, not a body
    assert sum(case.sqs_refuses for case in CORPUS) >= 5
    assert len(pii_values(CORPUS)) >= 20


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_each_message_gets_its_outcome(case):
    batch = build_batch(as_messages([case.body]), PiiKeys(KEY))
    assert len(batch.rows) + len(batch.rejections) == 1
    assert ("row" if len(batch.rows) else batch.rejections[0].reason) == case.expect


def test_no_rejection_holds_plaintext_pii():
    batch = build_batch(as_messages([case.body for case in CORPUS]), PiiKeys(KEY))
    assert len(batch.rows) + len(batch.rejections) == len(CORPUS)
    text = "\n".join(f"{r.detail}\n{r.masked_body}" for r in batch.rejections)
    assert [value for value in pii_values(CORPUS) if value in text] == []
