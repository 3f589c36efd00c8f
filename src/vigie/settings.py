"""One typed settings object, read from `VIGIE_*` environment variables.

Built when a command or the app starts, never at import time, and passed to what
needs it. Every field is documented in docs/settings.md; a test fails when one is not.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "vigie"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir,
                           description="Folder for the embedded SQLite store and the match indexes.")
    database_url: str | None = Field(None, description="SQLAlchemy URL of the store; default: SQLite in data_dir. "
                                     "PostgreSQL: postgresql+psycopg://user@host/db")
    max_pixels: int = Field(100_000_000, ge=1, description="Largest picture decoded, in pixels (decompression-bomb "
                            "guard); larger pictures get the error code too_large.")
    max_file_bytes: int = Field(2 * 1024**3, ge=1, description="Largest file decoded as a picture, in bytes; "
                                "larger files are still hashed with MD5/SHA-1/SHA-256.")
    pdq_threshold: int = Field(31, ge=0, le=128, description="Default PDQ match distance (Meta's rule: 31).")
    pdq_quality_floor: int = Field(50, ge=0, le=100, description="Queries with PDQ quality below this are not "
                                   "matched by PDQ (HMA's default, 50: flat pictures look alike to PDQ); 0 "
                                   "matches all; a bank may set its own (vigie bank set --quality-floor).")
    pdq_engine: str = Field("numba", description="PDQ implementation: numba (bit-exact, fast) or reference "
                            "(Meta's C++ via pdqhash).")
    fast_decode: bool = Field(False, description="Decode JPEGs at reduced scale (much faster, moves a few PDQ "
                              "bits; see bench/hash_bench.py). Off by default: hashes stay bit-exact.")
    workers: int = Field(0, ge=0, description="Processes for hashing; 0 means one per CPU core.")
    hash_in_process: bool = Field(False, description="A one-worker scan hashes in its own process instead of "
                                  "a worker process: a little less overhead, but a file that crashes a decoder "
                                  "then stops the scan (the same command resumes it in a worker process, which "
                                  "pins the crash on the file). Off: every scan's decoders run in worker "
                                  "processes.")
    scan_heap_keep_mb: int = Field(512, ge=0, le=1024, description="Free memory (MB) a scanning process keeps "
                                   "for its next picture instead of giving it back to the system (glibc): a "
                                   "camera photo's buffers are reused without page faults, about a quarter "
                                   "less decode time (docs/scanning.md); 0 keeps glibc's defaults.")
    alpha: str = Field("ignore", description="Transparent pictures: ignore alpha and hash the colour channels "
                       "as stored (what HMA does, default) or composite them on alpha_background.")
    file_timeout: float = Field(60.0, ge=0, description="Seconds spent on one file before it is given up with "
                                "the error code timeout (0: no limit).")
    alpha_background: tuple[int, int, int] = Field((255, 255, 255), description="Colour that transparent "
                                                   "pixels are composited on when alpha=composite (white, as a "
                                                   "browser shows them).")
    dihedral: bool = Field(True, description="Match the eight rotations and mirrors of a query picture.")
    variant_unbordered: bool = Field(True, description="Hash pictures with uniform borders removed as an extra "
                                     "variant (finds framed and letterboxed copies).")
    variant_region: bool = Field(True, description="Hash the dominant photo inside a screenshot or collage as "
                                 "an extra variant.")
    variant_crops: bool = Field(True, description="Give bank entries whose media Vigie holds central-crop "
                                "variants (95, 90, 80 %) so cropped copies match.")
    variant_hma_compat: bool = Field(True, description="Also compute HMA's own PDQ of pictures whose mode HMA "
                                     "hashes otherwise (palette, CMYK, 1-bit, 16-bit grey) as the query variant "
                                     "hma_compat, so lists hashed by HMA or python-threatexchange match "
                                     "(docs/hashing.md).")
    archive_max_depth: int = Field(5, ge=0, description="Archives inside archives are opened down to this depth; "
                                   "deeper ones are listed with the error code too_deep.")
    archive_max_total_bytes: int = Field(20 * 1024**3, ge=1, description="Most bytes unpacked from one top-level "
                                         "archive, nested ones included (zip-bomb guard).")
    archive_max_ratio: float = Field(200.0, gt=1, description="Largest unpacked/packed size ratio of an archive "
                                     "member (zip-bomb guard).")
    archive_max_entries: int = Field(1_000_000, ge=1, description="Most entries read from one archive.")
    carve_unallocated: bool = Field(True, description="Carve pictures and videos (JPEG, PNG, GIF, WebP, "
                                    "BMP, MP4/MOV, AVI, Matroska/WebM) from the unallocated space of file systems "
                                    "in disk images, and from space no file system describes (a partition without "
                                    "one, the space between partitions) (docs/sources.md).")
    video_max_seconds: float = Field(4 * 3600.0, gt=0, description="Longest video decoded for vPDQ; longer "
                                     "videos are hashed on their first video_max_seconds.")
    variant_one_pass: bool = Field(True, description="Hash the rotations, mirrors and crops of a query picture "
                                   "in one pass over its pixels (PDQ's filter sampled where the turned or cropped "
                                   "picture puts it; the same bits in practice, docs/variants.md) instead of "
                                   "turning or cropping the pixels and running PDQ again (off: 5-30 times slower).")
    variant_derived_dihedral: bool = Field(False, description="Also try rotations and mirrors of the de-bordered "
                                           "and region variants (finds a mirrored copy inside a screenshot; "
                                           "2.6 times the look-ups per query).")
    review_consensus: int = Field(2, ge=1, le=10, description="Distinct analysts who must agree before a review "
                                  "classification takes effect (Project Arachnid uses 3).")
    review_categories: dict | None = Field(None, description="Review categories: name -> {label, verdict (facets "
                                           "or scheme:label)}; default: illegal_baseline, illegal_national, "
                                           "not_illegal, ai_generated, second_opinion.")
    review_bank: str = Field("review-confirmed", description="Bank that confirmed review decisions go to when none "
                             "is chosen (created when missing).")
    review_cluster_threshold: int | None = Field(None, ge=0, le=128, description="PDQ distance for near-duplicate "
                                                 "review clusters (default: pdq_threshold).")
    review_max_original_bytes: int = Field(512 * 1024**2, ge=1, description="Largest original file kept "
                                           "(encrypted) for review.")
    media_key: SecretStr | None = Field(None, description="Base64 of the 32-byte AES-GCM key for media kept for "
                                        "review (or VIGIE_MEDIA_KEY); never stored in the database. Without it, "
                                        "review media are refused (no_media_key).")
    media_retention_days: int = Field(30, ge=0, description="Days after a review decision before the media kept "
                                      "for it are purged; hashes and decisions remain.")
    timezone: str = Field("UTC", description="The deployment's time zone (an IANA name, e.g. Europe/Paris): the "
                          "times the web pages show, such as when a review lock ends, and where review days begin.")
    login_max_failures: int = Field(5, ge=1, description="Wrong passwords in a row before an account is locked.")
    login_lockout_minutes: int = Field(15, ge=1, description="How long a locked account stays locked.")
    session_idle_minutes: int = Field(30, ge=1, description="A web session ends after this long without a request.")
    session_max_hours: int = Field(12, ge=1, description="A web session ends this long after login, active or not.")
    cookie_secure: bool = Field(False, description="Always mark the session cookie Secure (set it behind a TLS "
                                "proxy); it is set anyway on https.")
    api_rate_limit_per_minute: int = Field(600, ge=1, description="Default requests a minute per API key, all "
                                           "server processes together (answers 429 with Retry-After beyond).")
    login_lockout_max_minutes: int = Field(24 * 60, ge=1, description="Longest lock of an account: each lock in a "
                                           "row lasts twice the one before, up to this.")
    login_attempts_per_address: int = Field(30, ge=1, description="Login attempts accepted from one address per "
                                            "15 minutes, all accounts together (429 beyond).")
    otp_valid_hours: int = Field(24, ge=1, description="How long a one-time password opens its account (only to "
                                 "choose a new password).")
    redis_url: str | None = Field(None, description="Redis (redis://host:6379/0) for the rate limits shared by all "
                                  "server processes; without it they are counted in the store.")
    rate_limit_secret: SecretStr | None = Field(None, description="Key of the hashes under which addresses are "
                                                "counted (give the same to servers on several machines); default: "
                                                "random at each start, shared by its workers, never stored.")
    max_json_bytes: int = Field(1024**2, ge=1024, description="Largest JSON body accepted by the web app (413 "
                                "beyond).")
    max_form_bytes: int = Field(256 * 1024, ge=1024, description="Largest form body (login, report form, ...).")
    max_upload_bytes: int = Field(64 * 1024**2, ge=1024, description="Largest file upload (match a picture, "
                                  "review upload), held in memory and never written to disk.")
    api_max_image_pixels: int = Field(40_000_000, ge=1, description="Largest picture (in pixels) that "
                                      "/api/v1/match/image decodes; checked on the header before decoding.")
    wellbeing_floor: dict | None = Field(None, description="The harshest review wellbeing policy allowed (JSON, "
                                         "fields of the review policy, e.g. {\"daily_limit_min\": 120, "
                                         "\"days_per_week\": 3}); supervisors and analysts can only be gentler. "
                                         "Default: 240 min a day, 120 in a session, 10 min breaks, blur 4, muted.")
    report_public_delay_hours: float = Field(24.0, ge=0, description="The public status of a report moves only "
                                             "after this long (received, then being checked, then closed), so its "
                                             "timing tells nothing about what was found.")
    sharing_name: str | None = Field(None, description="The name this instance signs shared hash batches with "
                                     "(default vigie-<key id>).")
    sharing_sync_minutes: int = Field(60, ge=1, description="How often `vigie serve` pulls the banks it subscribes "
                                      "to from partners (vigie sync does it at once).")
    flood_factor: float = Field(20.0, gt=1, description="An entry is quarantined when its matches in one day "
                                "exceed this many times its daily average (and at least flood_min).")
    flood_min: int = Field(100, ge=1, description="Fewest matches in one day before an entry can be "
                           "quarantined as a flood.")
    hotline_name: str = Field("Vigie hotline", description="Name of this hotline, shown on the public report "
                              "form and signed under takedown notices.")
    report_rate_limit_per_hour: int = Field(20, ge=1, description="Reports accepted per hour from one address "
                                            "(counted on a keyed hash that changes hourly; the address itself "
                                            "is never stored).")
    report_max_urls: int = Field(20, ge=1, description="Most URLs in one public report.")
    crawl_allowed_networks: list[str] = Field(default_factory=list, description="Networks (CIDR) the crawler "
                                              "may reach although they are private, loopback or reserved, e.g. "
                                              "[\"127.0.0.0/8\"] for tests; empty (default): public addresses "
                                              "only.")
    crawl_concurrency: int = Field(8, ge=1, description="Downloads the crawler runs at once, all hosts together.")
    crawl_per_host_concurrency: int = Field(2, ge=1, description="Downloads at once from one host.")
    crawl_per_host_delay: float = Field(0.5, ge=0, description="Seconds between the starts of two requests to "
                                        "one host.")
    crawl_timeout: float = Field(20.0, gt=0, description="Seconds to connect, and the longest silence while "
                                 "reading, before a request is given up (timeout).")
    crawl_fetch_seconds: float = Field(120.0, gt=0, description="Longest time one download may take in all "
                                       "(slow-drip guard).")
    crawl_max_redirects: int = Field(5, ge=0, description="Redirects followed per request; each target is "
                                     "checked against the address rules again.")
    crawl_max_page_bytes: int = Field(5 * 1024**2, ge=1, description="Largest HTML page read.")
    crawl_max_media_bytes: int = Field(200 * 1024**2, ge=1, description="Largest picture or video downloaded "
                                       "(larger: too_large).")
    crawl_max_depth: int = Field(2, ge=0, description="Links on the same site (registrable domain, the site a "
                                 "redirect lands on included) followed this many pages deep from the reported URL.")
    crawl_max_pages: int = Field(50, ge=1, description="Most HTML pages fetched for one reported URL.")
    crawl_max_media: int = Field(500, ge=1, description="Most media downloaded for one reported URL.")
    crawl_max_attempts: int = Field(3, ge=1, description="Tries of a reported URL whose crawl failed before it "
                                    "is given up.")
    crawl_hash_processes: bool = Field(True, description="Hash crawled media in worker processes, so that a "
                                       "decoder crashing on a hostile file costs that file (decoder_crash), not "
                                       "the crawl; off: threads of the crawler (faster to start).")
    crawl_user_agent: str = Field("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                                  "Chrome/131.0.0.0 Safari/537.36", description="User-Agent of the crawler: a "
                                  "browser's by default, so a site cannot show the crawler a 404 and everyone else "
                                  "the picture.")
    crawl_retries: int = Field(3, ge=0, description="Tries again of a fetch that failed transiently (timeout, "
                               "refused connection, 408, 425, 429, 5xx) within one crawl.")
    crawl_retry_backoff: float = Field(1.0, ge=0, description="Seconds before the first retry of a failed fetch, "
                                       "doubled at each further try (a server's Retry-After is honoured instead).")
    crawl_retry_max_wait: float = Field(60.0, ge=0, description="Longest wait before a retry within a crawl; a "
                                        "Retry-After longer than this leaves the fetch to a later round.")
    crawl_hash_seconds: float = Field(120.0, gt=0, description="Longest time to hash one crawled file; a timeout "
                                      "while the hashing processes start (cold start) is tried once more.")
    crawl_interval_seconds: float = Field(30.0, gt=0, description="How often the worker of `vigie serve` looks "
                                          "for new reports, due re-checks and due notices.")
    crawl_render_auto: bool = Field(True, description="Open a page in the browser (rendering mode) when it runs "
                                    "scripts and shows no picture.")
    crawl_render_hosts: list[str] = Field(default_factory=list, description="Host names or sites (registrable "
                                          "domains) whose pages are always opened in the browser.")
    crawl_render_seconds: float = Field(30.0, gt=0, description="Time budget of one page in the browser (load, "
                                        "scrolling, the network going quiet); what it loaded so far is kept.")
    crawl_render_pages: int = Field(3, ge=0, description="Most pages of one reported URL opened in the browser.")
    crawl_render_concurrency: int = Field(2, ge=1, description="Pages open in the browser at once.")
    crawl_chromium: str | None = Field(None, description="The chromium the rendering mode runs (default: "
                                       "chromium on the PATH; without one, pages are not rendered).")
    crawl_cloak_agent: str = Field("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                                   "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                                   description="Second User-Agent: a reported URL that answers with an error or "
                                   "a page without a picture is asked again under it (cloaking; '' to never).")
    crawl_report_seconds: float = Field(900.0, gt=0, description="Time budget of one reported URL in a round; "
                                        "what is left is carried to the next round.")
    crawl_carry_rounds: int = Field(10, ge=1, description="Rounds one reported URL may be carried over before "
                                    "what is still left is given up (budget).")
    takedown_recheck_minutes: float = Field(60.0, gt=0, description="How often a noticed URL is fetched again "
                                            "to see whether the material is gone.")
    takedown_renotice_hours: float = Field(24.0, gt=0, description="A provider is noticed again this long after "
                                           "the last notice while the material is still served.")
    asn_table: Path | None = Field(None, description="A table of IP networks and AS numbers (CSV `network,asn` "
                                   "or iptoasn TSV) so providers known by AS number are found; see "
                                   "docs/takedown.md.")
    notice_from: str = Field("hotline@localhost", description="From address of takedown notices.")
    smtp_host: str | None = Field(None, description="SMTP server for takedown notices; unset: notices are "
                                  "recorded as failed (smtp_not_configured) and tried again.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP port.")
    smtp_starttls: bool = Field(False, description="Use STARTTLS on the SMTP connection.")
    smtp_username: str | None = Field(None, description="SMTP login (optional).")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (optional).")
    smtp_timeout: float = Field(30.0, gt=0, description="Seconds before an SMTP exchange is given up.")

    # --- invariants (vigie.policy, vigie.audit, vigie.rematch) ---
    jurisdiction: str | None = Field(None, description="This deployment's country (ISO 3166 alpha-2, e.g. FR): "
                                     "material illegal under national law with no jurisdiction named is taken as "
                                     "illegal here, and noticed only to providers in this country.")
    policy_ai_generated: str = Field("illegal", description="What a match on AI-generated material whose legality "
                                     "is not stated triggers: illegal (founded report, takedown notice) or "
                                     "not_illegal (neither).")
    policy_unclassified: str = Field("illegal", description="What a match on an entry with no legality at all (a "
                                     "hash list without categories) triggers: illegal or not_illegal.")
    audit_witness: Path | None = Field(None, description="Witness file the signed audit checkpoints are appended "
                                       "to, outside the database (default data_dir/audit/witness.jsonl); copy it "
                                       "off the machine.")
    audit_checkpoint_minutes: float = Field(60.0, ge=0, description="How often the worker of `vigie serve` signs "
                                            "an audit checkpoint when the trail moved (0: only on demand).")

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, v: str) -> str:
        if v not in ("ignore", "composite"):
            raise ValueError("alpha must be ignore or composite")
        return v

    @field_validator("pdq_engine")
    @classmethod
    def _engine(cls, v: str) -> str:
        if v not in ("numba", "reference"):
            raise ValueError("pdq_engine must be numba or reference")
        return v

    @field_validator("policy_ai_generated", "policy_unclassified")
    @classmethod
    def _policy(cls, v: str) -> str:
        if v not in ("illegal", "not_illegal"):
            raise ValueError("a policy setting is illegal or not_illegal")
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone is an IANA time zone name (e.g. Europe/Paris), not {v!r}") from None
        return v.strip()

    @field_validator("jurisdiction")
    @classmethod
    def _jurisdiction(cls, v: str | None) -> str | None:
        if v is not None and (len(v.strip()) != 2 or not v.strip().isalpha()):
            raise ValueError("jurisdiction is a two-letter country code (ISO 3166 alpha-2)")
        return v.strip().upper() if v else v

    @property
    def effective_workers(self) -> int:
        return self.workers or (os.cpu_count() or 1)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'vigie.db'}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"


#: What `vigie scan --fast` changes (bench/scan_bench.py runs the same): every query variant off, and large
#: JPEGs decoded at reduced scale (DCT scaling; each such row is flagged `pdq_reduced`).
FAST_SCAN = {"dihedral": False, "variant_unbordered": False, "variant_region": False, "variant_hma_compat": False,
             "variant_derived_dihedral": False, "fast_decode": True}
