"""The recognizers the de-identifier runs: Presidio's own for e-mail, MAC address and card numbers, plus
ours for names, dates, ages, identifiers, places, URLs and IP addresses. All are Presidio ``EntityRecognizer``s
none needs an NLP model; plus the learned recognisers the configuration names: the spaCy NER pipeline (``learned``),
the fine-tuned MiniLM (``transformer``)."""

from __future__ import annotations

from engine.deid._presidio import CreditCardRecognizer, EmailRecognizer, EntityRecognizer, MacAddressRecognizer
from engine.deid.recognizers.dates import date_recognizer
from engine.deid.recognizers.facilities import FacilityRecognizer
from engine.deid.recognizers.locations import CityRecognizer, address_recognizer
from engine.deid.recognizers.names import NameRecognizer
from engine.deid.recognizers.numbers import number_recognizer
from engine.deid.recognizers.web import web_recognizer
from schemas.phi import PhiCategory

# Presidio entity names -> our categories (ours already use the category values)
PRESIDIO_ENTITIES: dict[str, PhiCategory] = {
    "EMAIL_ADDRESS": PhiCategory.EMAIL,
    "URL": PhiCategory.URL,
    "IP_ADDRESS": PhiCategory.IP,
    "MAC_ADDRESS": PhiCategory.ID,
    "CREDIT_CARD": PhiCategory.ID,
    **{c.value: c for c in PhiCategory},
}


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail pattern without its domain check: the check calls tldextract, which downloads the
    public-suffix list, and an address with an unknown suffix ("x@clinic.local") is still PHI."""

    def validate_result(self, pattern_text: str):
        return None


def default_recognizers(model: str = "rules", ner_model_dir=None, transformer_model_dir=None) -> list[EntityRecognizer]:
    """The rules; with ``model="rules+ner"`` also the learned NER pipeline, with ``"rules+transformer"`` the fine-tuned
    MiniLM recogniser, with ``"rules+ner+transformer"`` both (the union of all)."""
    rules = [
        OfflineEmailRecognizer(),
        web_recognizer(),
        MacAddressRecognizer(),
        CreditCardRecognizer(),
        number_recognizer(),
        date_recognizer(),
        address_recognizer(),
        CityRecognizer(),
        FacilityRecognizer(),
        NameRecognizer(),
    ]
    learned = model.split("+")[1:]
    if "ner" in learned:
        from engine.deid.recognizers.learned import NerRecognizer

        rules.append(NerRecognizer(ner_model_dir))
    if "transformer" in learned:
        from engine.deid.recognizers.transformer import TransformerRecognizer

        rules.append(TransformerRecognizer(transformer_model_dir))
    return rules
