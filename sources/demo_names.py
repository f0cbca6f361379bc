"""Reference tables for the demo company generator (`sources.demo`).

Plain data only: countries, cities with postcode areas, phone numbering plans, e-mail domains,
curated names (accented, Irish, South Asian, nicknames, very common names) and the catalogue
values of the web shop, the stores and the support desk. Name, street and postcode pools that
need volume are drawn from Faker in `sources.demo_people`; these tables make them realistic.
"""

from __future__ import annotations

#: Countries the retailer sells to, with the share of customers living there.
COUNTRIES: tuple[str, ...] = ("GB", "IE", "DE", "FR", "PL", "US")
COUNTRY_WEIGHTS: tuple[float, ...] = (0.62, 0.08, 0.09, 0.08, 0.07, 0.06)

#: How the CRM sometimes spells a country instead of its ISO code (names pycountry knows).
COUNTRY_NAMES: dict[str, str] = {
    "GB": "United Kingdom",
    "IE": "Ireland",
    "DE": "Germany",
    "FR": "France",
    "PL": "Poland",
    "US": "United States",
}

CURRENCY: dict[str, str] = {
    "GB": "GBP",
    "IE": "EUR",
    "DE": "EUR",
    "FR": "EUR",
    "PL": "PLN",
    "US": "USD",
}

#: Mobile numbering plans: calling code, national prefixes, digits after the prefix, how the
#: national significant number is grouped when printed, and the national trunk prefix.
PHONE_PLANS: dict[str, dict] = {
    "GB": {
        "cc": "44",
        "prefixes": ("74", "75", "78", "79"),
        "rest": 8,
        "groups": (4, 6),
        "trunk": "0",
    },
    "IE": {
        "cc": "353",
        "prefixes": ("83", "85", "86", "87", "89"),
        "rest": 7,
        "groups": (2, 3, 4),
        "trunk": "0",
    },
    "DE": {
        "cc": "49",
        "prefixes": ("170", "171", "172", "173", "174", "175", "176", "177", "178", "179"),
        "rest": 7,
        "groups": (3, 7),
        "trunk": "0",
    },
    "FR": {
        "cc": "33",
        "prefixes": (
            "61",
            "62",
            "63",
            "64",
            "65",
            "66",
            "67",
            "68",
            "73",
            "74",
            "75",
            "76",
            "77",
            "78",
        ),
        "rest": 7,
        "groups": (1, 2, 2, 2, 2),
        "trunk": "0",
    },
    "PL": {
        "cc": "48",
        "prefixes": ("50", "51", "53", "57", "60", "66", "69", "72", "73", "78", "79", "88"),
        "rest": 7,
        "groups": (3, 3, 3),
        "trunk": "",
    },
    "US": {
        "cc": "1",
        "prefixes": ("212", "312", "415", "617", "206", "512", "303", "646", "718"),
        "rest": 7,
        "groups": (3, 3, 4),
        "trunk": "",
    },
}

#: Cities per country: (name, weight, postcode areas). The postcode area is the fixed start of
#: every postcode generated for that city (GB outward letters, IE routing key, the leading
#: digits elsewhere).
CITIES: dict[str, tuple[tuple[str, float, tuple[str, ...]], ...]] = {
    "GB": (
        ("London", 0.30, ("E", "N", "SE", "SW", "W", "NW")),
        ("Manchester", 0.08, ("M",)),
        ("Birmingham", 0.08, ("B",)),
        ("Leeds", 0.06, ("LS",)),
        ("Glasgow", 0.06, ("G",)),
        ("Bristol", 0.05, ("BS",)),
        ("Liverpool", 0.05, ("L",)),
        ("Edinburgh", 0.05, ("EH",)),
        ("Sheffield", 0.04, ("S",)),
        ("Cardiff", 0.04, ("CF",)),
        ("Newcastle upon Tyne", 0.04, ("NE",)),
        ("Nottingham", 0.04, ("NG",)),
        ("Leicester", 0.03, ("LE",)),
        ("Brighton", 0.03, ("BN",)),
        ("Belfast", 0.03, ("BT",)),
        ("Norwich", 0.02, ("NR",)),
    ),
    "IE": (
        ("Dublin", 0.50, ("D01", "D02", "D04", "D06", "D08", "D12", "D15", "D24")),
        ("Cork", 0.15, ("T12", "T23")),
        ("Galway", 0.10, ("H91",)),
        ("Limerick", 0.10, ("V94",)),
        ("Waterford", 0.08, ("X91",)),
        ("Kilkenny", 0.07, ("R95",)),
    ),
    "DE": (
        ("Berlin", 0.25, ("10", "12", "13")),
        ("Hamburg", 0.15, ("20", "22")),
        ("München", 0.15, ("80", "81")),
        ("Köln", 0.12, ("50", "51")),
        ("Frankfurt am Main", 0.10, ("60",)),
        ("Stuttgart", 0.08, ("70",)),
        ("Düsseldorf", 0.08, ("40",)),
        ("Leipzig", 0.07, ("04",)),
    ),
    "FR": (
        ("Paris", 0.35, ("750",)),
        ("Lyon", 0.12, ("690",)),
        ("Marseille", 0.12, ("130",)),
        ("Toulouse", 0.10, ("310",)),
        ("Nice", 0.08, ("060",)),
        ("Nantes", 0.08, ("440",)),
        ("Bordeaux", 0.08, ("330",)),
        ("Lille", 0.07, ("590",)),
    ),
    "PL": (
        ("Warszawa", 0.30, ("00", "01", "02", "03", "04")),
        ("Kraków", 0.18, ("30", "31")),
        ("Łódź", 0.12, ("90", "91", "93")),
        ("Wrocław", 0.14, ("50", "51", "53")),
        ("Poznań", 0.12, ("60", "61")),
        ("Gdańsk", 0.14, ("80",)),
    ),
    "US": (
        ("New York", 0.30, ("100", "101", "102")),
        ("Chicago", 0.15, ("606",)),
        ("Boston", 0.15, ("021",)),
        ("San Francisco", 0.15, ("941",)),
        ("Seattle", 0.10, ("981",)),
        ("Austin", 0.15, ("787",)),
    ),
}

#: Where customers' names come from. A "name origin" is a Faker locale (or the curated South
#: Asian pool); each country of residence mixes several, as a real customer base does.
ORIGINS: tuple[str, ...] = (
    "en_GB",
    "en_IE",
    "de_DE",
    "fr_FR",
    "pl_PL",
    "en_US",
    "zh_CN",
    "south_asian",
)
ORIGIN_MIX: dict[str, dict[str, float]] = {
    "GB": {
        "en_GB": 0.83,
        "en_IE": 0.03,
        "pl_PL": 0.03,
        "zh_CN": 0.03,
        "south_asian": 0.07,
        "fr_FR": 0.01,
    },
    "IE": {"en_IE": 0.86, "en_GB": 0.05, "pl_PL": 0.06, "zh_CN": 0.03},
    "DE": {"de_DE": 0.90, "pl_PL": 0.05, "fr_FR": 0.02, "zh_CN": 0.03},
    "FR": {"fr_FR": 0.93, "de_DE": 0.02, "south_asian": 0.02, "zh_CN": 0.03},
    "PL": {"pl_PL": 0.97, "de_DE": 0.03},
    "US": {"en_US": 0.82, "en_IE": 0.05, "zh_CN": 0.05, "south_asian": 0.05, "de_DE": 0.03},
}

#: Names Faker's pools lack but a British/Irish customer base has, put at the front of the pool.
EXTRA_FIRST_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "en_GB": {
        "male": ("James", "David", "John", "Robert", "William", "Thomas", "Michael", "Daniel"),
        "female": (
            "Sarah",
            "Zoë",
            "Chloë",
            "Elizabeth",
            "Margaret",
            "Katherine",
            "Rebecca",
            "Renée",
        ),
    },
    "en_IE": {
        "male": ("Seán", "Patrick", "Ciarán", "Eoin", "Pádraig"),
        "female": ("Mary", "Siobhán", "Niamh", "Aoife", "Saoirse", "Áine"),
    },
    "en_US": {
        "male": ("Michael", "Robert", "William", "Christopher", "Joseph"),
        "female": ("Jennifer", "Patricia", "Elizabeth", "Susan", "Victoria"),
    },
    "pl_PL": {"male": ("Łukasz", "Paweł", "Wojciech"), "female": ("Małgorzata", "Zofia")},
    "de_DE": {"male": ("Jürgen", "Thomas"), "female": ("Käthe", "Anna")},
    "fr_FR": {"male": ("François", "Jérôme"), "female": ("Zoé", "Hélène", "Marie")},
}
EXTRA_LAST_NAMES: dict[str, tuple[str, ...]] = {
    "en_GB": ("Smith", "Jones", "Williams", "Taylor", "Brown", "O'Brien", "McDonald", "Davies"),
    "en_IE": ("Murphy", "O'Brien", "O'Neill", "O'Connor", "Ó Súilleabháin", "Kelly"),
    "en_US": ("Smith", "Johnson", "Williams", "Garcia"),
    "pl_PL": ("Nowak", "Kowalski", "Wiśniewski", "Wójcik"),
    "de_DE": ("Müller", "Schmidt", "Schäfer"),
    "fr_FR": ("Martin", "Lefèvre", "Dubois"),
}

SOUTH_ASIAN_NAMES: dict[str, tuple[str, ...]] = {
    "male": (
        "Mohammed",
        "Muhammad",
        "Imran",
        "Ahmed",
        "Ali",
        "Hassan",
        "Arjun",
        "Rahul",
        "Amir",
        "Bilal",
        "Usman",
        "Zain",
        "Sanjay",
        "Ravi",
    ),
    "female": (
        "Aisha",
        "Fatima",
        "Ayesha",
        "Priya",
        "Zara",
        "Amina",
        "Sana",
        "Maryam",
        "Noor",
        "Anjali",
        "Sunita",
        "Meera",
    ),
    "last": (
        "Khan",
        "Ahmed",
        "Patel",
        "Hussain",
        "Ali",
        "Begum",
        "Shah",
        "Singh",
        "Iqbal",
        "Rahman",
        "Akhtar",
        "Chaudhry",
        "Sharma",
        "Kaur",
    ),
}

#: Formal first name -> nicknames customers use for themselves. Every pair is one the
#: `nicknames` package knows, so the standardiser can map the nickname back.
NICKNAMES: dict[str, tuple[str, ...]] = {
    "Robert": ("Bob", "Rob", "Bobby"),
    "William": ("Bill", "Will", "Billy"),
    "James": ("Jim", "Jimmy", "Jamie"),
    "John": ("Jack", "Johnny"),
    "Thomas": ("Tom", "Tommy"),
    "Michael": ("Mike", "Mick"),
    "Daniel": ("Dan", "Danny"),
    "David": ("Dave", "Davey"),
    "Christopher": ("Chris",),
    "Joseph": ("Joe", "Joey"),
    "Richard": ("Rich", "Dick", "Ricky"),
    "Edward": ("Ed", "Ted", "Eddie"),
    "Anthony": ("Tony",),
    "Matthew": ("Matt",),
    "Nicholas": ("Nick",),
    "Andrew": ("Andy", "Drew"),
    "Benjamin": ("Ben",),
    "Samuel": ("Sam",),
    "Stephen": ("Steve",),
    "Timothy": ("Tim",),
    "Peter": ("Pete",),
    "Charles": ("Charlie", "Chuck"),
    "Patrick": ("Pat", "Paddy"),
    "Elizabeth": ("Liz", "Beth", "Lizzie", "Betty"),
    "Margaret": ("Maggie", "Peggy", "Meg"),
    "Katherine": ("Kate", "Kathy"),
    "Catherine": ("Cathy",),
    "Rebecca": ("Becky", "Becca"),
    "Victoria": ("Vicky", "Tori"),
    "Jennifer": ("Jenny", "Jen"),
    "Patricia": ("Pat", "Patty", "Trish"),
    "Susan": ("Sue", "Susie"),
    "Deborah": ("Debbie", "Deb"),
    "Alexandra": ("Alex", "Sandra"),
    "Alexander": ("Alex", "Sandy"),
    "Jonathan": ("Jon", "Jonny"),
    "Samantha": ("Sam",),
    "Jessica": ("Jess",),
    "Christine": ("Chris", "Tina"),
}

#: Very common full names, per country: many distinct people share them in one city.
COMMON_NAMES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "GB": (
        ("James", "Smith", "male"),
        ("Mohammed", "Khan", "male"),
        ("David", "Jones", "male"),
        ("Sarah", "Williams", "female"),
        ("John", "Smith", "male"),
    ),
    "IE": (("Mary", "Murphy", "female"), ("Patrick", "Kelly", "male")),
    "DE": (("Thomas", "Müller", "male"), ("Anna", "Schmidt", "female")),
    "FR": (("Marie", "Martin", "female"), ("Jean", "Dubois", "male")),
    "PL": (("Anna", "Nowak", "female"), ("Piotr", "Kowalski", "male")),
    "US": (("Michael", "Smith", "male"), ("Maria", "Garcia", "female")),
}
#: Origin pool each common name belongs to (so sex and script stay consistent).
COMMON_NAME_ORIGIN: dict[str, str] = {
    "GB": "en_GB",
    "IE": "en_IE",
    "DE": "de_DE",
    "FR": "fr_FR",
    "PL": "pl_PL",
    "US": "en_US",
}

#: Placeholder values many unrelated records share (hard negatives for a careless matcher).
JUNK_EMAILS: tuple[str, ...] = ("noemail@example.com", "test@test.com")
JUNK_PHONE = "0000000000"
JUNK_DOB = "1900-01-01"

EMAIL_DOMAINS: dict[str, tuple[tuple[str, float], ...]] = {
    "GB": (
        ("gmail.com", 0.33),
        ("outlook.com", 0.12),
        ("hotmail.co.uk", 0.12),
        ("yahoo.co.uk", 0.10),
        ("btinternet.com", 0.08),
        ("icloud.com", 0.08),
        ("sky.com", 0.05),
        ("live.co.uk", 0.05),
        ("googlemail.com", 0.07),
    ),
    "IE": (
        ("gmail.com", 0.40),
        ("eircom.net", 0.15),
        ("hotmail.com", 0.20),
        ("yahoo.ie", 0.10),
        ("icloud.com", 0.15),
    ),
    "DE": (
        ("gmx.de", 0.25),
        ("web.de", 0.25),
        ("gmail.com", 0.25),
        ("t-online.de", 0.15),
        ("outlook.de", 0.10),
    ),
    "FR": (
        ("orange.fr", 0.25),
        ("gmail.com", 0.30),
        ("free.fr", 0.15),
        ("laposte.net", 0.10),
        ("hotmail.fr", 0.20),
    ),
    "PL": (
        ("wp.pl", 0.25),
        ("o2.pl", 0.15),
        ("gmail.com", 0.35),
        ("onet.pl", 0.20),
        ("interia.pl", 0.05),
    ),
    "US": (
        ("gmail.com", 0.45),
        ("yahoo.com", 0.20),
        ("outlook.com", 0.15),
        ("icloud.com", 0.10),
        ("aol.com", 0.10),
    ),
}
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
GMAIL_TAGS: tuple[str, ...] = ("shop", "news", "promo", "retail", "deals")

#: Street name suffixes for GB/IE/US addresses, with the abbreviation some systems store.
STREET_SUFFIXES: tuple[tuple[str, float], ...] = (
    ("Road", 0.30),
    ("Street", 0.25),
    ("Lane", 0.10),
    ("Avenue", 0.10),
    ("Close", 0.07),
    ("Drive", 0.06),
    ("Way", 0.04),
    ("Gardens", 0.03),
    ("Crescent", 0.03),
    ("Place", 0.02),
)
STREET_STEMS: tuple[str, ...] = (
    "High",
    "Church",
    "Station",
    "Mill",
    "Park",
    "Victoria",
    "King's",
    "Queen's",
    "Manor",
    "School",
    "Green",
    "North",
    "London",
    "Albert",
    "Grange",
    "Windsor",
    "York",
    "Orchard",
)
ADDRESS_ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("Street", "St"),
    ("Road", "Rd"),
    ("Avenue", "Ave"),
    ("Lane", "Ln"),
    ("Drive", "Dr"),
    ("Close", "Cl"),
    ("Crescent", "Cres"),
    ("Gardens", "Gdns"),
    ("Place", "Pl"),
    ("straße", "str."),
    ("Straße", "Str."),
)

PRODUCTS: tuple[str, ...] = tuple(f"SKU-{i:05d}" for i in range(10001, 10401))
COUPONS: tuple[str, ...] = ("WELCOME10", "SPRING15", "SUMMER20", "BLACKFRIDAY", "FREESHIP", "VIP25")
DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
SIGNUP_SOURCES: tuple[str, ...] = ("footer", "checkout", "popup", "in_store", "competition")
CONSENT_METHODS: tuple[str, ...] = ("web_form", "checkout", "call_centre", "preference_centre")
SUPPORT_CHANNELS: tuple[str, ...] = ("email", "chat", "phone", "web_form")
SUPPORT_SUBJECTS: tuple[str, ...] = (
    "Where is my order?",
    "Return request",
    "Refund not received",
    "Item arrived damaged",
    "Change delivery address",
    "Problem with discount code",
    "Loyalty points missing",
    "Cancel my order",
    "Wrong size delivered",
    "Account login issue",
    "Unsubscribe from emails",
    "Product question",
)
CAMPAIGN_THEMES: tuple[str, ...] = (
    "New arrivals",
    "Weekend sale",
    "Loyalty rewards",
    "Back in stock",
    "Seasonal edit",
    "Member exclusive",
    "Last chance",
    "Gift guide",
)
#: Store ids of the retailer's physical shops (GB and a few in Ireland).
GB_STORES: tuple[int, ...] = tuple(range(101, 131))
IE_STORES: tuple[int, ...] = (201, 202, 203)
