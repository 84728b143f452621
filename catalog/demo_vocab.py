"""Vocabularies and word lists for the deterministic demo catalog (``catalog.demo``); data only."""

from __future__ import annotations

GENRES: tuple[str, ...] = (
    "pop", "rock", "hip hop", "jazz", "classical", "electronic", "house", "techno", "metal", "folk",
    "country", "r&b", "soul", "reggae", "latin", "indie", "lo-fi", "blues", "punk", "ambient",
)
# Relative share of artists whose primary genre is each of GENRES (same order).
GENRE_WEIGHTS: tuple[float, ...] = (14, 10, 12, 3, 2, 7, 4, 3, 3, 3, 5, 6, 3, 2, 6, 7, 4, 2, 2, 2)

MOODS: tuple[str, ...] = (
    "happy", "melancholic", "energetic", "calm", "romantic", "dark", "uplifting", "dreamy",
    "aggressive", "nostalgic", "peaceful", "playful", "intense", "chill", "groovy",
)

THEMES: tuple[str, ...] = (
    "late-night drives", "summer love", "heartbreak", "working out", "studying", "rainy days",
    "road trips", "partying with friends", "falling in love", "growing up", "leaving home",
    "city lights", "the open sea", "lazy sunday mornings", "missing someone", "new beginnings",
    "chasing dreams", "small-town life", "dancing until sunrise", "winter nights", "first kisses",
    "losing control", "coming home", "broken promises", "staying up late", "freedom",
    "long summer evenings", "self-discovery", "the end of the world", "quiet mornings with coffee",
)

# Moods each genre leans towards; a track draws most of its moods from here.
MOODS_BY_GENRE: dict[str, tuple[str, ...]] = {
    "pop": ("happy", "uplifting", "romantic", "playful"),
    "rock": ("energetic", "intense", "nostalgic", "aggressive"),
    "hip hop": ("intense", "dark", "energetic", "groovy"),
    "jazz": ("calm", "romantic", "groovy", "melancholic"),
    "classical": ("peaceful", "calm", "melancholic", "dreamy"),
    "electronic": ("energetic", "dreamy", "uplifting", "intense"),
    "house": ("groovy", "happy", "energetic", "uplifting"),
    "techno": ("dark", "intense", "energetic", "aggressive"),
    "metal": ("aggressive", "intense", "dark", "energetic"),
    "folk": ("nostalgic", "melancholic", "calm", "peaceful"),
    "country": ("nostalgic", "romantic", "happy", "melancholic"),
    "r&b": ("romantic", "groovy", "chill", "dreamy"),
    "soul": ("romantic", "uplifting", "groovy", "melancholic"),
    "reggae": ("chill", "happy", "peaceful", "groovy"),
    "latin": ("playful", "romantic", "energetic", "happy"),
    "indie": ("dreamy", "melancholic", "nostalgic", "playful"),
    "lo-fi": ("chill", "calm", "dreamy", "nostalgic"),
    "blues": ("melancholic", "nostalgic", "dark", "romantic"),
    "punk": ("aggressive", "energetic", "playful", "intense"),
    "ambient": ("peaceful", "dreamy", "calm", "dark"),
}

# Genres an artist of a given primary genre may blend in as a secondary genre.
RELATED_GENRES: dict[str, tuple[str, ...]] = {
    "pop": ("electronic", "r&b", "latin", "indie", "house"),
    "rock": ("indie", "punk", "metal", "blues", "folk"),
    "hip hop": ("r&b", "electronic", "latin", "soul", "lo-fi"),
    "jazz": ("soul", "blues", "lo-fi", "classical"),
    "classical": ("ambient", "jazz"),
    "electronic": ("house", "techno", "ambient", "pop"),
    "house": ("techno", "electronic", "pop"),
    "techno": ("house", "electronic", "ambient"),
    "metal": ("rock", "punk"),
    "folk": ("indie", "country", "rock"),
    "country": ("folk", "rock", "blues"),
    "r&b": ("soul", "hip hop", "pop"),
    "soul": ("r&b", "jazz", "blues"),
    "reggae": ("latin", "hip hop", "soul"),
    "latin": ("pop", "reggae", "hip hop"),
    "indie": ("rock", "folk", "pop", "electronic"),
    "lo-fi": ("hip hop", "jazz", "ambient"),
    "blues": ("rock", "soul", "jazz"),
    "punk": ("rock", "metal"),
    "ambient": ("electronic", "classical", "lo-fi"),
}

GENRE_LABELS: dict[str, str] = {"hip hop": "Hip Hop", "r&b": "R&B", "lo-fi": "Lo-Fi"}

# Genres whose pieces are described as "tracks" (mostly instrumental) or "pieces" rather than "songs".
TRACK_NOUN_BY_GENRE: dict[str, str] = {
    "electronic": "track", "house": "track", "techno": "track", "ambient": "track", "lo-fi": "track",
    "classical": "piece",
}

BAND_ADJECTIVES: tuple[str, ...] = (
    "Nova", "Velvet", "Golden", "Silver", "Neon", "Midnight", "Crystal", "Electric", "Lunar", "Solar",
    "Wild", "Quiet", "Paper", "Glass", "Hollow", "Crimson", "Amber", "Indigo", "Scarlet", "Cosmic",
    "Broken", "Silent", "Young", "Lost", "Northern", "Southern", "Burning", "Frozen", "Distant", "Gentle",
    "Savage", "Honey", "Ivory", "Cobalt", "Static", "Analog", "Vintage", "Desert", "Ocean", "Polar",
)
BAND_NOUNS: tuple[str, ...] = (
    "Harbor", "Bloom", "Tide", "Ember", "Signal", "Orchard", "Parade", "Atlas", "Mirage", "Canyon",
    "Lantern", "Meadow", "Circuit", "Comet", "Garden", "Avenue", "Harvest", "Horizon", "Riot", "Summit",
    "Voyage", "Season", "Theory", "Motel", "Arcade", "District", "Fever", "Union", "Engine", "Empire",
    "Coast", "Frontier", "Radio", "Machine", "Kingdom", "Palace", "Station", "Hotel", "Club", "Society",
)
BAND_PLURALS: tuple[str, ...] = (
    "Foxes", "Wolves", "Ravens", "Tigers", "Strangers", "Saints", "Ghosts", "Kings", "Rebels", "Lovers",
    "Drifters", "Sparrows", "Wanderers", "Pilots", "Sailors", "Dreamers", "Shadows", "Giants", "Bandits",
    "Hearts", "Owls", "Horses", "Rockets", "Lions", "Echoes", "Satellites", "Monarchs", "Thieves",
    "Comets", "Tides", "Machines", "Daughters", "Brothers", "Cowboys", "Astronauts", "Hounds",
)
STAGE_PREFIXES: tuple[str, ...] = ("DJ", "MC", "Lil", "Young", "Big")
STAGE_NAMES: tuple[str, ...] = (
    "Kairo", "Zed", "Vex", "Nyx", "Mako", "Blaze", "Juno", "Rivo", "Kato", "Sol", "Onyx", "Remy",
    "Tiko", "Axel", "Luma", "Flux", "Zara", "Dex", "Koda", "Nico", "Ryze", "Echo", "Jinx", "Pax",
    "Vega", "Orion", "Skye", "Nova", "Rico", "Taz",
)
FIRST_NAMES: tuple[str, ...] = (
    "Maya", "Leo", "Ava", "Noah", "Isabella", "Mateo", "Sofia", "Luca", "Amara", "Kenji", "Aisha",
    "Elijah", "Chloe", "Diego", "Hana", "Omar", "Lena", "Felix", "Nina", "Jonah", "Priya", "Samuel",
    "Zoe", "Theo", "Camila", "Ezra", "Freya", "Malik", "Iris", "Oscar", "Yara", "Rafael", "Elena",
    "Julian", "Mila", "Tobias", "Lucia", "Kai", "Nadia", "Arjun", "Grace", "Marcus", "Ines", "Hugo",
)
LAST_NAMES: tuple[str, ...] = (
    "Harper", "Chen", "Rivera", "Okafor", "Lindqvist", "Moreau", "Park", "Silva", "Novak", "Bennett",
    "Kowalski", "Tanaka", "Haddad", "Quinn", "Adeyemi", "Fischer", "Ramos", "Castillo", "Byrne", "Sato",
    "Nakamura", "Petrov", "Mendes", "Larsen", "Dubois", "Costa", "Walsh", "Ibrahim", "Rossi", "Hughes",
    "Kim", "Patel", "Morales", "Jensen", "Ortega", "Vance", "Holloway", "Sinclair", "Delacroix", "Monroe",
)
CITIES: tuple[str, ...] = (
    "Lisbon", "Berlin", "Nashville", "Lagos", "Seoul", "Melbourne", "Montreal", "Bristol", "Austin",
    "Mexico City", "Stockholm", "Atlanta", "Tokyo", "Glasgow", "Detroit", "Kingston", "Paris", "Bogotá",
    "Chicago", "Cape Town", "Dublin", "Manchester", "São Paulo", "Oslo", "Los Angeles", "New Orleans",
)

TITLE_NOUNS: tuple[str, ...] = (
    "Heart", "Fire", "Rain", "Night", "Sun", "Moon", "River", "City", "Dream", "Light", "Shadow",
    "Ocean", "Summer", "Winter", "Love", "Road", "Star", "Sky", "Storm", "Paradise", "Gold", "Home",
    "Memory", "Mirror", "Silence", "Thunder", "Highway", "Window", "Echo", "Garden", "Island", "Horizon",
    "Sunset", "Midnight", "Diamond", "Feather", "Satellite", "Wildfire", "Daylight", "Kingdom", "Bridge",
    "Desert", "Signal", "Ghost", "Angel", "Secret", "Wave", "Flame", "Rose", "Fever", "Glory", "Harbor",
    "Valley", "Stranger", "Shelter", "Compass", "Lullaby", "Wonder", "Morning", "Autumn", "Spring",
    "Avenue", "Carousel", "Lighthouse", "Hurricane", "Gravity", "Heaven", "Mountain", "Forest", "Ashes",
    "Cherry", "Velvet", "Skyline", "Tomorrow", "Yesterday", "Heartbeat", "Stardust", "Moonlight",
    "Sunrise", "Eclipse", "Thread", "Crown", "Anchor", "Canvas", "Harmony", "Frequency", "Paper", "Smoke",
    "Lemonade", "Neon", "Motel", "Radio", "Orbit", "Tide", "Ember", "Bloom", "Static", "Cathedral",
)
TITLE_ADJECTIVES: tuple[str, ...] = (
    "Golden", "Broken", "Electric", "Blue", "Wild", "Lonely", "Sweet", "Endless", "Burning", "Silent",
    "Restless", "Hollow", "Crystal", "Fading", "Bright", "Crazy", "Little", "Perfect", "Dark", "Secret",
    "Frozen", "Tender", "Brave", "Distant", "Faded", "Holy", "Lucky", "Northern", "Strange", "Bitter",
    "Sacred", "Shining", "Heavy", "Gentle", "Savage", "Dizzy", "Hidden", "Last", "Midnight", "Velvet",
    "Silver", "Purple", "Scarlet", "Paper", "Glass", "Lost", "Young", "Quiet", "Cold", "Warm", "Sunny",
    "Rainy", "Empty", "Magic", "Cosmic", "Slow", "Fast", "Neon", "Ordinary", "Beautiful",
)
TITLE_GERUNDS: tuple[str, ...] = (
    "Dancing", "Running", "Falling", "Chasing", "Waiting", "Dreaming", "Burning", "Flying", "Holding",
    "Driving", "Breaking", "Calling", "Shining", "Drifting", "Fading", "Losing", "Finding", "Walking",
    "Singing", "Leaving", "Crying", "Rising", "Fighting", "Counting", "Sailing", "Hiding", "Floating",
)
TITLE_PREPOSITIONS: tuple[str, ...] = (
    "in the", "on the", "under the", "through the", "across the", "after the", "before the", "into the",
    "beyond the", "over the", "with the",
)
TITLE_PHRASES: tuple[str, ...] = (
    "Take Me to the {}", "Meet Me at the {}", "Don't Let the {} Go", "When the {} Falls",
    "Tell Me About the {}", "Back to the {}", "Lost in the {}", "Under a {} Sky", "All I Want Is {}",
    "Nothing Like the {}", "Wake Me When {} Ends", "Say Goodbye to the {}",
)
ALBUM_PLURALS: tuple[str, ...] = (
    "Lanterns", "Skylines", "Echoes", "Letters", "Postcards", "Horizons", "Reflections", "Seasons",
    "Tapes", "Stories", "Waves", "Windows", "Voices", "Colors", "Rooms", "Roads", "Fragments", "Islands",
    "Signals", "Machines", "Gardens", "Ghosts", "Maps", "Mirrors", "Satellites", "Dreams", "Hours",
)
ALBUM_SUFFIXES: tuple[str, ...] = ("Sessions", "Tapes", "Chronicles", "Diaries", "Suite", "Stories")

PLAYLIST_SUFFIXES: tuple[str, ...] = (
    "Beats", "Vibes", "Mix", "Essentials", "Hits", "Anthems", "Grooves", "Session", "Radio", "Classics",
)
PLAYLIST_OCCASIONS: tuple[str, ...] = (
    "Rainy Day", "Sunday Morning", "Late Night", "Summer", "Coffee Shop", "Road Trip", "Workout",
    "Study", "Golden Hour", "Dinner Party", "Midnight", "Beach Day",
)
PLAYLIST_ACTIVITIES: tuple[str, ...] = (
    "Studying", "Working Out", "Focus", "Sleep", "Cooking", "Running", "Road Trips", "Rainy Days",
    "Late Nights", "Deep Work", "Reading", "Yoga",
)
DECADES: tuple[str, ...] = ("70s", "80s", "90s", "2000s", "2010s")

PODCAST_TOPICS: tuple[str, ...] = (
    "true crime", "technology", "comedy", "science", "history", "music history", "business",
    "health and wellness", "film", "video games", "sports", "philosophy", "cooking", "travel",
    "parenting", "personal finance", "politics", "language learning", "mental health", "books",
)
PODCAST_MOODS: tuple[str, ...] = ("calm", "playful", "intense", "uplifting", "dark", "chill")
PODCAST_TITLE_TEMPLATES: tuple[str, ...] = (
    "The {topic} Hour", "{topic} Weekly", "Talking {topic}", "Inside {topic}", "{topic} Unplugged",
    "The {topic} Podcast", "{topic} After Dark", "Everything {topic}",
)
PODCAST_FREQUENCIES: tuple[str, ...] = ("daily", "weekly", "weekly", "biweekly", "monthly")
PODCAST_FORMATS: tuple[str, ...] = (
    "interviews and listener questions", "deep dives and expert guests", "news, debates and hot takes",
    "long conversations and storytelling", "short, punchy episodes",
)
