"""Word lists the generated corpora are built from. Plain data; facts here are true of the real world."""

COUNTRY_CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon",
    "Japan": "Tokyo", "China": "Beijing", "India": "Delhi", "Egypt": "Cairo", "Kenya": "Nairobi",
    "Canada": "Ottawa", "Mexico": "Mexico City", "Brazil": "Brasilia", "Peru": "Lima", "Chile": "Santiago",
    "Russia": "Moscow", "Poland": "Warsaw", "Greece": "Athens", "Turkey": "Ankara", "Norway": "Oslo",
    "Sweden": "Stockholm", "Finland": "Helsinki", "Denmark": "Copenhagen", "Ireland": "Dublin",
    "Austria": "Vienna", "Hungary": "Budapest", "Thailand": "Bangkok", "Vietnam": "Hanoi", "Cuba": "Havana",
    "Australia": "Canberra", "Argentina": "Buenos Aires", "Nigeria": "Abuja", "Ghana": "Accra",
    "Morocco": "Rabat", "Iran": "Tehran", "Iraq": "Baghdad", "Belgium": "Brussels", "Switzerland": "Bern",
    "Netherlands": "Amsterdam", "Colombia": "Bogota",
}

OPPOSITES = {
    "hot": "cold", "big": "small", "fast": "slow", "up": "down", "open": "closed", "light": "dark",
    "happy": "sad", "early": "late", "old": "new", "full": "empty", "hard": "soft", "high": "low",
    "long": "short", "rich": "poor", "wet": "dry", "strong": "weak", "near": "far", "clean": "dirty",
    "first": "last", "true": "false",
}

ANIMAL_SOUNDS = {
    "dog": "woof", "cat": "meow", "cow": "moo", "duck": "quack", "sheep": "baa", "lion": "roar",
    "owl": "hoot", "horse": "neigh", "pig": "oink", "frog": "croak", "snake": "hiss", "bee": "buzz",
}

THING_COLORS = {
    "the sky": "blue", "grass": "green", "snow": "white", "coal": "black", "a banana": "yellow",
    "a tomato": "red", "an orange": "orange", "a plum": "purple", "the sun": "yellow", "milk": "white",
    "a lemon": "yellow", "a frog": "green",
}

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

FIRST_NAMES = [
    "Maria", "James", "Aisha", "Chen", "Lucas", "Sofia", "Omar", "Emma", "Noah", "Olivia", "Liam", "Ava",
    "Mateo", "Mia", "Ethan", "Zara", "Hugo", "Lena", "Ivan", "Nina", "Kofi", "Yara", "Ravi", "Anna", "Leo",
    "Sara", "Tom", "Elif", "Jonas", "Clara", "Diego", "Hana", "Felix", "Ines", "Pablo", "Rosa", "Sam",
    "Tara", "Umar", "Vera", "Wei", "Xena", "Yusuf", "Zoe", "Amir", "Bella", "Carl", "Dana", "Eli", "Fay",
    "Gus", "Hugh", "Ida", "Jack", "Kim", "Lara", "Max", "Nora", "Otto", "Paula", "Quinn", "Rita", "Seth",
    "Tess", "Uma", "Vic", "Will", "Yuki", "Zack", "Alma", "Bo", "Cleo", "Dev", "Eva", "Finn", "Gia",
    "Hal", "Isla", "Jude", "Kai", "Lou", "Mona", "Ned", "Opal", "Pia", "Reza", "Sol", "Theo", "Una",
]

PRODUCTS = [
    "laptop", "phone", "headset", "keyboard", "monitor", "router", "camera", "tablet", "charger", "speaker",
    "mouse", "printer", "watch", "backpack", "lamp", "kettle", "blender", "jacket", "desk", "chair",
]

CITIES = ["Lisbon", "Denver", "Osaka", "Lagos", "Leeds", "Porto", "Austin", "Lyon", "Perth", "Quito",
          "Seoul", "Malmo", "Cork", "Turin", "Accra", "Boston"]

ADJECTIVES = ["new", "small", "red", "heavy", "quiet", "cheap", "bright", "old", "blue", "large"]
VERBS_PAST = ["bought", "ordered", "returned", "fixed", "sold", "packed", "shipped", "found", "lost", "used"]
