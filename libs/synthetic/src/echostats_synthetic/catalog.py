"""Deterministic synthetic music catalog: artists, albums, tracks and audio features.

`generate_catalog(seed, n_tracks)` is pure: the same arguments always give the same
catalog (one seeded `random.Random`, no clock, no global state), and the result is
immutable, so it is cached per process and shared by every app instance and by reset.
Consumers (the simulator's routers, history and export generators) turn these records into
Spotify shapes; this module only owns the data.

Realism that later endpoints rely on: artists carry real-world genre strings (a few carry
none, as small artists do on Spotify), ids are 22-character base62, a few popular artists
own most releases, audio features follow each genre family's profile, durations and
release dates are plausible, and every track belongs to exactly one album.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from types import MappingProxyType

from .ids import random_id


@dataclass(frozen=True, slots=True)
class Artist:
    """A catalog artist."""

    id: str
    name: str
    genres: tuple[str, ...]
    popularity: int
    followers: int


@dataclass(frozen=True, slots=True)
class Album:
    """A catalog album; `track_ids` are in track-number order."""

    id: str
    name: str
    album_type: str  # "album" | "single" | "compilation"
    artist_ids: tuple[str, ...]
    release_date: str
    release_date_precision: str  # "day" | "month" | "year"
    total_tracks: int
    label: str
    popularity: int
    upc: str
    track_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Track:
    """A catalog track."""

    id: str
    name: str
    album_id: str
    artist_ids: tuple[str, ...]
    duration_ms: int
    explicit: bool
    track_number: int
    disc_number: int
    popularity: int
    isrc: str


@dataclass(frozen=True, slots=True)
class AudioFeatures:
    """Spotify audio features for one track (same id as the track)."""

    id: str
    danceability: float
    energy: float
    key: int
    loudness: float
    mode: int
    speechiness: float
    acousticness: float
    instrumentalness: float
    liveness: float
    valence: float
    tempo: float
    duration_ms: int
    time_signature: int


@dataclass(frozen=True, slots=True)
class Catalog:
    """An immutable catalog; mappings keep generation order."""

    seed: int
    artists: Mapping[str, Artist]
    albums: Mapping[str, Album]
    tracks: Mapping[str, Track]
    audio_features: Mapping[str, AudioFeatures]
    artist_track_ids: Mapping[str, tuple[str, ...]]
    genres: tuple[str, ...]

    def track_ids(self) -> tuple[str, ...]:
        """All track ids in generation order."""
        return tuple(self.tracks)


# --- genre families -----------------------------------------------------------------------
# Each family gives genre strings as Spotify spells them plus the centre of its audio
# features, so that e.g. a metal track is loud and energetic and a classical one acoustic.


@dataclass(frozen=True, slots=True)
class _Family:
    genres: tuple[str, ...]
    weight: float
    energy: float
    dance: float
    acoustic: float
    instrumental: float
    valence: float
    speech: float
    tempo: float
    loudness: float
    duration_s: float
    explicit_rate: float


# Columns after the genres: weight, energy, danceability, acousticness, instrumentalness,
# valence, speechiness, tempo (BPM), loudness (dB), duration (s), explicit rate.
# fmt: off
_FAMILIES: tuple[_Family, ...] = (
    _Family(
        ("pop", "dance pop", "art pop", "electropop", "indie pop", "bedroom pop", "synthpop",
         "k-pop", "swedish pop", "uk pop", "alt z"),
        0.22, 0.66, 0.68, 0.18, 0.01, 0.55, 0.06, 118, -6.0, 200, 0.25,
    ),
    _Family(
        ("modern rock", "indie rock", "alternative rock", "garage rock", "post-punk",
         "shoegaze", "dream pop", "classic rock", "pop punk", "emo"),
        0.15, 0.74, 0.48, 0.12, 0.08, 0.45, 0.05, 126, -6.5, 225, 0.12,
    ),
    _Family(
        ("hip hop", "rap", "trap", "uk drill", "grime", "conscious hip hop",
         "alternative hip hop", "lo-fi hip hop", "melodic rap"),
        0.14, 0.64, 0.76, 0.14, 0.02, 0.48, 0.22, 128, -6.8, 190, 0.7,
    ),
    _Family(
        ("deep house", "melodic techno", "drum and bass", "uk garage", "edm",
         "progressive house", "ambient", "downtempo", "electronica"),
        0.11, 0.72, 0.66, 0.07, 0.55, 0.38, 0.06, 124, -7.5, 330, 0.04,
    ),
    _Family(
        ("contemporary r&b", "neo soul", "alternative r&b", "soul", "funk", "disco"),
        0.08, 0.55, 0.70, 0.25, 0.02, 0.56, 0.08, 104, -7.2, 215, 0.3,
    ),
    _Family(
        ("reggaeton", "trap latino", "latin pop", "urbano latino", "bachata", "salsa"),
        0.08, 0.74, 0.78, 0.15, 0.01, 0.66, 0.09, 98, -5.2, 205, 0.35,
    ),
    _Family(
        ("indie folk", "folk", "singer-songwriter", "contemporary country", "americana",
         "country road", "bluegrass", "chamber pop"),
        0.08, 0.42, 0.52, 0.62, 0.05, 0.44, 0.04, 112, -9.0, 230, 0.04,
    ),
    _Family(
        ("jazz", "contemporary jazz", "jazz fusion", "hard bop", "vocal jazz", "cool jazz"),
        0.05, 0.38, 0.55, 0.70, 0.45, 0.50, 0.05, 116, -11.0, 290, 0.0,
    ),
    _Family(
        ("classical", "baroque", "early romantic era", "modern classical", "neoclassical",
         "soundtrack", "orchestral"),
        0.04, 0.18, 0.28, 0.92, 0.88, 0.22, 0.04, 100, -19.0, 360, 0.0,
    ),
    _Family(
        ("metal", "metalcore", "progressive metal", "death metal", "alternative metal"),
        0.04, 0.92, 0.38, 0.02, 0.18, 0.28, 0.09, 138, -4.5, 270, 0.25,
    ),
    _Family(
        ("afrobeats", "amapiano", "afropop", "dancehall", "reggae"),
        0.03, 0.68, 0.80, 0.20, 0.05, 0.70, 0.10, 110, -6.2, 215, 0.15,
    ),
)
# fmt: on
_FAMILY_CUM_WEIGHTS = tuple(accumulate(f.weight for f in _FAMILIES))
_TIME_SIGNATURES = (4, 3, 5, 1)
_TIME_SIGNATURE_CUM_WEIGHTS = tuple(accumulate((90, 7, 2, 1)))
_ALBUM_TYPES = ("album", "single", "compilation")
_ALBUM_TYPE_CUM_WEIGHTS = tuple(accumulate((55, 37, 8)))

# --- name material ------------------------------------------------------------------------

_ADJ = (
    "Golden", "Silent", "Electric", "Velvet", "Paper", "Neon", "Broken", "Midnight", "Hollow",
    "Crimson", "Wild", "Quiet", "Northern", "Glass", "Lucky", "Endless", "Blue", "Sweet",
    "Lost", "Burning", "Static", "Gentle", "Distant", "Bitter", "Secret", "Young", "Cold",
    "Fading", "Bright", "Little", "Strange", "Slow", "Tender", "Heavy", "Sunday", "Summer",
)  # fmt: skip
_NOUN = (
    "Harbor", "Echo", "River", "Machine", "Garden", "Signal", "Mirror", "Horizon", "Avenue",
    "Fever", "Comet", "Lantern", "Ocean", "Satellite", "Canyon", "Season", "Memory", "Window",
    "Orchard", "Engine", "Tide", "Parade", "Ghost", "Island", "Heart", "Radio", "Forest",
    "Highway", "Shadow", "Light", "Storm", "Letter", "Balloon", "Dream", "Mountain", "City",
)  # fmt: skip
_FIRST = (
    "Maya", "Leo", "Nora", "Elias", "Ava", "Oscar", "Ines", "Theo", "Lina", "Jonah", "Sofia",
    "Felix", "Amara", "Hugo", "Zara", "Milo", "Freya", "Kofi", "Luna", "Mateo", "Yuki", "Ezra",
)  # fmt: skip
_LAST = (
    "Lind", "Okafor", "Reyes", "Berg", "Novak", "Park", "Dubois", "Holm", "Costa", "Sato",
    "Meyer", "Adeyemi", "Larsen", "Moreau", "Silva", "Quinn", "Vance", "Ekström", "Rossi",
)  # fmt: skip
_VERB = (
    "Running", "Falling", "Dancing", "Waiting", "Drifting", "Calling", "Dreaming", "Burning",
    "Holding", "Chasing", "Floating", "Breaking",
)  # fmt: skip
_PREP = ("to", "through", "under", "over", "into", "across", "beyond", "for")
_LABELS = (
    "Harbor Records", "Northern Lights Music", "Paper Moon Recordings", "Velvet Tape",
    "Static Bloom", "Glasshouse Sounds", "Echo Valley Records", "Independent",
)  # fmt: skip
_ISRC_COUNTRIES = ("SE", "US", "GB", "DE", "FR", "NG", "BR", "JP", "KR", "ES", "CA", "AU")


def _artist_name(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.35:
        return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    if roll < 0.55:
        return f"The {rng.choice(_NOUN)}s"
    if roll < 0.8:
        return f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}"
    if roll < 0.92:
        return rng.choice(_NOUN) + rng.choice(("", " Club", " Society", " Collective"))
    return f"{rng.choice(_FIRST)} & the {rng.choice(_NOUN)}s"


def _title(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.35:
        return f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}"
    if roll < 0.55:
        return rng.choice(_NOUN)
    if roll < 0.75:
        return f"{rng.choice(_VERB)} {rng.choice(_PREP)} the {rng.choice(_NOUN)}"
    if roll < 0.9:
        return f"{rng.choice(_NOUN)} of {rng.choice(_NOUN)}s"
    return f"{rng.choice(_ADJ)} {rng.choice(_ADJ)} {rng.choice(_NOUN)}"


def _unit(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 3)


def _clamp_int(value: float, low: int, high: int) -> int:
    return int(min(high, max(low, round(value))))


def _release(rng: random.Random) -> tuple[str, str, int]:
    # Most listening is recent music: years cluster near the present with a long tail.
    year = max(1958, 2025 - int(abs(rng.gauss(0, 11))))
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    if year < 1990 and rng.random() < 0.25:
        return f"{year}", "year", year
    if year < 2000 and rng.random() < 0.08:
        return f"{year}-{month:02d}", "month", year
    return f"{year}-{month:02d}-{day:02d}", "day", year


def _unique_id(rng: random.Random, taken: set[str]) -> str:
    while True:  # collisions are astronomically rare, but ids must be unique
        new_id = random_id(rng)
        if new_id not in taken:
            taken.add(new_id)
            return new_id


def _features(rng: random.Random, fam: _Family, track_id: str, duration_ms: int) -> AudioFeatures:
    energy = _unit(rng.gauss(fam.energy, 0.12))
    instrumental = fam.instrumental + rng.gauss(0, 0.15)
    # Louder masters go with higher energy; Spotify's range is about -60..0 dB.
    loudness = fam.loudness + (energy - fam.energy) * 6 + rng.gauss(0, 1.5)
    return AudioFeatures(
        id=track_id,
        danceability=_unit(rng.gauss(fam.dance, 0.11)),
        energy=energy,
        key=rng.randrange(-1, 12) if rng.random() < 0.02 else rng.randrange(12),
        loudness=round(min(-1.0, max(-40.0, loudness)), 3),
        mode=1 if rng.random() < 0.62 else 0,
        speechiness=_unit(abs(rng.gauss(fam.speech, 0.05))),
        acousticness=_unit(rng.gauss(fam.acoustic, 0.15)),
        instrumentalness=_unit(instrumental if instrumental > 0.05 else rng.random() * 0.01),
        liveness=_unit(0.05 + rng.expovariate(1 / 0.12)),
        valence=_unit(rng.gauss(fam.valence, 0.18)),
        tempo=round(min(210.0, max(55.0, rng.gauss(fam.tempo, 14))), 3),
        duration_ms=duration_ms,
        time_signature=rng.choices(_TIME_SIGNATURES, cum_weights=_TIME_SIGNATURE_CUM_WEIGHTS)[0],
    )


@lru_cache(maxsize=8)
def generate_catalog(seed: int = 20_240_101, n_tracks: int = 10_000) -> Catalog:
    """Generate (or fetch from the per-process cache) the catalog for `seed` and size."""
    if n_tracks < 1:
        raise ValueError("n_tracks must be at least 1")
    rng = random.Random(seed)
    taken: set[str] = set()

    # Artists: about one per 20 tracks, popularity skewed low with a few stars.
    n_artists = max(1, n_tracks // 20)
    artists: dict[str, Artist] = {}
    families: dict[str, _Family] = {}
    for _ in range(n_artists):
        artist_id = _unique_id(rng, taken)
        fam = rng.choices(_FAMILIES, cum_weights=_FAMILY_CUM_WEIGHTS)[0]
        if rng.random() < 0.05:
            genres: tuple[str, ...] = ()  # small artists often have no genres on Spotify
        else:
            picks = rng.sample(fam.genres, k=min(len(fam.genres), rng.randint(1, 3)))
            if rng.random() < 0.15:
                other = rng.choice(_FAMILIES)
                picks.append(rng.choice(other.genres))
            genres = tuple(dict.fromkeys(picks))
        popularity = _clamp_int(rng.betavariate(2.0, 3.2) * 100, 0, 100)
        # Followers grow roughly exponentially with popularity.
        followers = int(10 ** (1 + popularity / 100 * 6.5) * rng.uniform(0.5, 1.5))
        artists[artist_id] = Artist(artist_id, _artist_name(rng), genres, popularity, followers)
        families[artist_id] = fam

    artist_ids = list(artists)
    # Popular artists release more: weight album ownership by popularity.
    owner_cum_weights = list(accumulate(1 + artists[a].popularity ** 1.5 for a in artist_ids))

    albums: dict[str, Album] = {}
    tracks: dict[str, Track] = {}
    features: dict[str, AudioFeatures] = {}
    by_artist: dict[str, list[str]] = {a: [] for a in artist_ids}

    while len(tracks) < n_tracks:
        owner = rng.choices(artist_ids, cum_weights=owner_cum_weights)[0]
        fam = families[owner]
        album_type = rng.choices(_ALBUM_TYPES, cum_weights=_ALBUM_TYPE_CUM_WEIGHTS)[0]
        size = {
            "album": rng.randint(8, 16),
            "single": rng.randint(1, 3),
            "compilation": rng.randint(12, 20),
        }[album_type]
        size = min(size, n_tracks - len(tracks))
        album_id = _unique_id(rng, taken)
        release_date, precision, year = _release(rng)
        album_pop = _clamp_int(artists[owner].popularity + rng.gauss(0, 8), 0, 100)
        name = _title(rng) if album_type != "album" or rng.random() > 0.08 else artists[owner].name
        track_ids: list[str] = []
        country = rng.choice(_ISRC_COUNTRIES)
        registrant = "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=3))
        for number in range(1, size + 1):
            track_id = _unique_id(rng, taken)
            credited = [owner]
            if rng.random() < 0.12 and len(artist_ids) > 1:
                guest = rng.choice(artist_ids)
                if guest != owner:
                    credited.append(guest)
            title = _title(rng)
            if len(credited) > 1 and rng.random() < 0.5:
                title += f" (feat. {artists[credited[1]].name})"
            elif year < 2000 and rng.random() < 0.15:
                title += f" - Remastered {rng.randint(2005, 2023)}"
            duration_ms = int(
                min(900_000, max(45_000, rng.lognormvariate(math.log(fam.duration_s), 0.25) * 1000))
            )
            tracks[track_id] = Track(
                id=track_id,
                name=title,
                album_id=album_id,
                artist_ids=tuple(credited),
                duration_ms=duration_ms,
                explicit=rng.random() < fam.explicit_rate,
                track_number=number,
                disc_number=1,
                popularity=_clamp_int(album_pop + rng.gauss(0, 9), 0, 100),
                isrc=f"{country}{registrant}{year % 100:02d}{rng.randrange(100_000):05d}",
            )
            features[track_id] = _features(rng, fam, track_id, duration_ms)
            track_ids.append(track_id)
            for artist_id in credited:
                by_artist[artist_id].append(track_id)
        albums[album_id] = Album(
            id=album_id,
            name=name,
            album_type=album_type,
            artist_ids=(owner,),
            release_date=release_date,
            release_date_precision=precision,
            total_tracks=len(track_ids),
            label=rng.choice(_LABELS),
            popularity=album_pop,
            upc=f"{rng.randrange(10**12):012d}",
            track_ids=tuple(track_ids),
        )

    all_genres = sorted({g for a in artists.values() for g in a.genres})
    return Catalog(
        seed=seed,
        artists=MappingProxyType(artists),
        albums=MappingProxyType(albums),
        tracks=MappingProxyType(tracks),
        audio_features=MappingProxyType(features),
        artist_track_ids=MappingProxyType({a: tuple(ids) for a, ids in by_artist.items()}),
        genres=tuple(all_genres),
    )
