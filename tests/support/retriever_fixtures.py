"""A hand-made mini catalog shared by the retriever tests (small enough to read, varied enough to rank)."""

from __future__ import annotations

from catalog.schema import Entity

MINI_CATALOG: tuple[Entity, ...] = (
    Entity("t-shake", "track", "Shake It Off", artist="Taylor Swift", album="1989", genres=("pop",),
           moods=("happy", "upbeat"), description="A bright dance pop song about ignoring the haters.", popularity=0.95),
    Entity("t-cardigan", "track", "Cardigan", artist="Taylor Swift", album="Folklore", genres=("indie folk",),
           moods=("wistful",), description="A quiet song about memories of a lost young love.", popularity=0.8),
    Entity("a-taylor", "artist", "Taylor Swift", genres=("pop", "country"),
           description="American singer-songwriter.", popularity=0.99),
    Entity("t-halo", "track", "Halo", artist="Beyoncé", album="I Am... Sasha Fierce", genres=("r&b", "pop"),
           moods=("romantic",), description="A soaring ballad about love that shines like a halo.", popularity=0.9),
    Entity("t-rain", "track", "Grey Window", artist="Lena Morrow", album="Overcast", genres=("acoustic",),
           moods=("melancholic", "sad"),
           description="A slow, sorrowful piano ballad about rain tapping on the glass and missing someone.",
           popularity=0.3),
    Entity("t-party", "track", "Club Inferno", artist="DJ Blaze", album="Night Shift", genres=("edm",),
           moods=("energetic",), description="A loud club banger to dance all night long.", popularity=0.6),
    Entity("t-gym", "track", "Iron Reps", artist="Max Volt", genres=("hip hop",), moods=("aggressive",),
           description="High energy workout anthem for lifting heavy at the gym.", popularity=0.5),
    Entity("t-beach", "track", "Sunny Coastline", artist="Marea Sol", genres=("reggae",), moods=("happy", "chill"),
           description="Summer sunshine, sand and waves on a tropical beach.", popularity=0.55),
    Entity("al-midnight", "album", "Midnight Memories", artist="Harbor Lights", genres=("rock",),
           moods=("nostalgic",), description="Guitar-driven rock album about late night drives.", popularity=0.4),
    Entity("pl-chill", "playlist", "Chill Evening Jazz", genres=("jazz",), moods=("relaxed",),
           description="Smooth saxophone and soft piano for a calm evening at home.", popularity=0.7),
    Entity("pc-tech", "podcast", "Silicon Weekly", genres=("technology",),
           description="Weekly news and interviews about startups, software and gadgets.", popularity=0.45),
    Entity("t-motor", "track", "Ace of Spades", artist="Motörhead", album="Ace of Spades", genres=("metal",),
           moods=("aggressive",), description="Fast and loud heavy metal classic about gambling.", popularity=0.75),
)

NEWCOMER = Entity("t-new", "track", "Quokka Lullaby", artist="Wren Ashby", genres=("ambient",), moods=("calm",),
                  description="A gentle lullaby about a small marsupial falling asleep.", popularity=0.1)
