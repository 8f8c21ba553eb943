"""Financial synonyms shared by every index backend, as plain data.

`FINANCIAL_SYNONYMS` holds equivalence rules in Solr format ("a, b, c": every phrase
means the same as the others). Elasticsearch takes them as-is in a `synonym_graph`
token filter; the embedded index expands queries with `synonym_groups()`. Phrases are
lower case, unstemmed and free of punctuation other than the separating commas, so
every analyser sees the same words. A phrase appears in one rule only: two rules
sharing a phrase would silently merge into one group in Elasticsearch.

Changing this list changes query-time expansion only (no backend expands synonyms at
index time), so it needs no reindex; an Elasticsearch index picks it up when the next
`teller reindex` creates a new index version.
"""

from __future__ import annotations

FINANCIAL_SYNONYMS: tuple[str, ...] = (
    # Rates and yields
    "apr, annual percentage rate",
    "apy, annual percentage yield",
    "bps, basis points",
    "ytd, year to date",
    # Deposit products
    "cd, certificate of deposit, share certificate",
    "mmda, money market deposit account, money market account",
    "ira, individual retirement account, individual retirement arrangement",
    "hsa, health savings account",
    "checking account, current account, chequing account",
    "safe deposit box, safety deposit box",
    # Lending
    "heloc, home equity line of credit",
    "arm, adjustable rate mortgage, variable rate mortgage",
    "frm, fixed rate mortgage",
    "mortgage, home loan",
    "auto loan, car loan, vehicle loan",
    "personal loan, signature loan",
    "ltv, loan to value, loan to value ratio",
    "dti, debt to income, debt to income ratio",
    "pmi, private mortgage insurance",
    "credit score, fico score",
    # Payments
    "ach, automated clearing house",
    "eft, electronic funds transfer",
    "p2p, person to person, peer to peer",
    "pos, point of sale",
    "nsf, non sufficient funds, insufficient funds",
    "bill pay, bill payment, online bill pay",
    "cashiers check, cashier check, official check, bank check",
    "foreign transaction fee, foreign exchange fee, fx fee",
    # Identifiers and cards
    "routing number, aba number, routing transit number",
    "iban, international bank account number",
    "swift code, bic, bank identifier code",
    "atm, automated teller machine, cash machine",
    "pin, personal identification number",
    "ssn, social security number",
    "ein, employer identification number",
    # Security and compliance
    "otp, one time password, one time passcode",
    "2fa, two factor authentication, mfa, multi factor authentication",
    "kyc, know your customer",
    "aml, anti money laundering",
    "fdic, federal deposit insurance corporation",
    "estatement, electronic statement, paperless statement",
)


def synonym_groups() -> list[tuple[str, ...]]:
    """Each rule of `FINANCIAL_SYNONYMS` as a tuple of its phrases, in rule order.

    >>> synonym_groups()[0]
    ('apr', 'annual percentage rate')
    """
    return [
        tuple(phrase.strip() for phrase in rule.split(",") if phrase.strip())
        for rule in FINANCIAL_SYNONYMS
    ]
