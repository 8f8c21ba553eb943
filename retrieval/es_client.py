"""The Elasticsearch client and the boundary where its errors become Teller errors.

`build_client` makes a client from `TELLER_ELASTICSEARCH_*` settings that talks to 8.x
and 9.x servers alike (`CompatibleWith8Transport`); `translated_errors` turns the
client's exceptions into `IndexUnavailableError`s whose message says what to do;
`bulk_write` streams bulk requests and collects the documents the cluster rejected,
which `bulk_indexing_error` reports as a `BulkIndexingError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from elastic_transport import HttpHeaders, Transport
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    ConnectionTimeout,
    Elasticsearch,
    NotFoundError,
    SSLError,
    TransportError,
    UnsupportedProductError,
    helpers,
)
from elasticsearch import ConnectionError as ESConnectionError

from retrieval.errors import BulkFailure, BulkIndexingError, IndexUnavailableError
from retrieval.es_responses import item_error

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "CompatibleWith8Transport",
    "build_client",
    "bulk_failure",
    "bulk_indexing_error",
    "bulk_write",
    "node_url",
    "translated_errors",
]

_COMPAT = re.compile(r"compatible-with=\d+")


class CompatibleWith8Transport(Transport):
    """Asks for version-8-compatible REST responses on every request.

    The 9.x client sends ``compatible-with=9``, which 8.x servers reject; 9.x servers
    accept ``compatible-with=8`` (REST API compatibility), so this one header lets the
    same client talk to both.
    """

    def perform_request(self, method: str, target: str, **kwargs: Any) -> Any:
        headers = kwargs.get("headers")
        if isinstance(headers, Mapping) and headers:
            rewritten = HttpHeaders(headers)
            for name in ("accept", "content-type"):
                if name in rewritten:
                    rewritten[name] = _COMPAT.sub("compatible-with=8", rewritten[name])
            kwargs["headers"] = rewritten
        return super().perform_request(method, target, **kwargs)


def build_client(
    settings: Settings, *, max_retries: int = 3, **client_options: Any
) -> Elasticsearch:
    """An `Elasticsearch` client from `TELLER_ELASTICSEARCH_*` settings.

    API key wins over basic auth; `ca_certs` verifies a cluster whose certificate is
    signed by its own CA (the default of a secured Elasticsearch 8+). Failed requests
    are retried `max_retries` times on other nodes (timeouts included);
    `client_options` go to `Elasticsearch(...)` as they are.
    """
    if not settings.elasticsearch_url:
        raise IndexUnavailableError("set TELLER_ELASTICSEARCH_URL to use the Elasticsearch backend")
    options: dict[str, Any] = {
        "request_timeout": settings.elasticsearch_timeout_s,
        "retry_on_timeout": True,
        "max_retries": max_retries,
        "transport_class": CompatibleWith8Transport,
    }
    if settings.elasticsearch_api_key is not None:
        options["api_key"] = settings.elasticsearch_api_key.get_secret_value()
    elif settings.elasticsearch_username:
        password = settings.elasticsearch_password
        options["basic_auth"] = (
            settings.elasticsearch_username,
            password.get_secret_value() if password is not None else "",
        )
    if settings.elasticsearch_ca_certs is not None:
        options["ca_certs"] = str(settings.elasticsearch_ca_certs)
    return Elasticsearch(settings.elasticsearch_url, **(options | client_options))


def node_url(client: Elasticsearch) -> str:
    """The client's first node address, without credentials (for messages)."""
    try:
        return str(client.transport.node_pool.all()[0].base_url)
    except (AttributeError, IndexError):
        return "the configured cluster"


@contextmanager
def translated_errors(doing: str, *, url: str, alias: str) -> Iterator[None]:
    """Raise the client's errors inside the block as `IndexUnavailableError`, from the
    original, with a message naming the cluster at `url`, what Teller was `doing` (an
    infinitive: "count chunks") and the fix; `alias` is the index alias in use."""
    where = f"Elasticsearch at {url}"
    try:
        yield
    except AuthenticationException as exc:
        raise IndexUnavailableError(
            f"{where} rejected Teller's credentials while trying to {doing}; check "
            "TELLER_ELASTICSEARCH_API_KEY (or TELLER_ELASTICSEARCH_USERNAME and _PASSWORD)"
        ) from exc
    except AuthorizationException as exc:
        raise IndexUnavailableError(
            f"{where} does not allow Teller's user to {doing}; grant it the index "
            f"privileges all on '{alias}*' and the cluster privilege monitor"
        ) from exc
    except NotFoundError as exc:
        raise IndexUnavailableError(
            f"{where} has no index or alias '{alias}' ({doing}); start the API once "
            "(it creates the index) or run `teller reindex`"
        ) from exc
    except UnsupportedProductError as exc:
        raise IndexUnavailableError(
            f"the server at {url} is not Elasticsearch; check TELLER_ELASTICSEARCH_URL"
        ) from exc
    except ApiError as exc:
        hint = ""
        if "media_type_header" in str(exc):
            hint = (
                "; the Python client is newer than the server: build it with "
                "ElasticsearchIndex.from_settings (which asks for 8.x-compatible responses)"
            )
        raise IndexUnavailableError(f"{where} refused to {doing}: {exc}{hint}") from exc
    except SSLError as exc:
        raise IndexUnavailableError(
            f"the TLS handshake with {where} failed ({exc}); set TELLER_ELASTICSEARCH_CA_CERTS "
            "to the cluster's CA certificate (config/certs/http_ca.crt) or fix the URL's scheme"
        ) from exc
    except ConnectionTimeout as exc:
        raise IndexUnavailableError(
            f"{where} did not answer in time while trying to {doing}; check the cluster's "
            "health or raise TELLER_ELASTICSEARCH_TIMEOUT_S"
        ) from exc
    except ESConnectionError as exc:
        raise IndexUnavailableError(
            f"cannot reach {where} to {doing} ({exc}); check TELLER_ELASTICSEARCH_URL and "
            "that the cluster is running (`docker compose ps elasticsearch`)"
        ) from exc
    except TransportError as exc:
        raise IndexUnavailableError(f"{where} failed to {doing}: {exc}") from exc


def bulk_write(
    client: Elasticsearch,
    actions: Iterable[dict[str, Any]],
    *,
    refresh: bool | Literal["wait_for"] = False,
    **options: Any,
) -> tuple[int, list[BulkFailure]]:
    """Send `actions` with `helpers.streaming_bulk`; returns (documents written,
    documents rejected).

    `options` (`chunk_size`, `max_retries`, `initial_backoff`, `max_backoff`) go to
    `streaming_bulk`, which retries chunks the cluster rejected as overloaded (429)
    with exponential backoff. Client errors propagate: call it inside
    `translated_errors`.
    """
    failures: list[BulkFailure] = []
    written = 0
    for ok, item in helpers.streaming_bulk(
        client, actions, raise_on_error=False, refresh=refresh, **options
    ):
        failure = bulk_failure(ok, item)
        if failure is None:
            written += 1
        else:
            failures.append(failure)
    return written, failures


def bulk_failure(ok: bool, item: Mapping[str, Any]) -> BulkFailure | None:
    """The failure in one `streaming_bulk` result, or None when it succeeded (deleting
    a missing document, status 404, counts as success: unknown keys are ignored)."""
    operation, info = next(iter(item.items()))
    status = int(info.get("status", 500))
    if ok or (operation == "delete" and status == 404):
        return None
    doc_id = str(info.get("_id"))
    return BulkFailure(
        key=int(doc_id) if doc_id.isdigit() else None,
        operation=operation,
        status=status,
        error=item_error(info),
    )


def bulk_indexing_error(
    failures: Sequence[BulkFailure], written: int, shown: int = 5
) -> BulkIndexingError:
    """The error for a partly rejected bulk write: what went wrong and what to do,
    naming the first `shown` failed chunks."""
    listed = "; ".join(f"chunk {f.key}: {f.error}" for f in failures[:shown])
    more = f" (and {len(failures) - shown} more)" if len(failures) > shown else ""
    return BulkIndexingError(
        f"{len(failures)} chunk(s) were rejected by Elasticsearch, {written} written: "
        f"{listed}{more}. Fix those chunks (or the mapping, with `teller reindex`) "
        "and ingest them again",
        failures,
    )
