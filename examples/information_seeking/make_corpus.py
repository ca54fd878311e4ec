"""Writes specs/information_seeking/data/documents.json: the encyclopedia of a fictional industrial region.

Cities, companies, plants, people and products, each one document: a title, a first-sentence summary, a body in
prose that names the documents it links to, the ids of those documents (``links``), the typed relations the
workflows' slots follow (``city``, ``owner``, ``plant``, ``founder``, ``ceo``, ``employer``) and an infobox of
numbers (``facts``). Everything comes from one seeded generator, so the file is the same on every run:

    python examples/information_seeking/make_corpus.py

Some facts are deliberately missing (a company that does not name its chief executive, a person whose birthplace or
year of birth is not recorded), and a few plants share their name with a plant in another city: the workflows ask
questions the documents cannot answer, and questions that need the user to say which plant they mean.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "specs" / "information_seeking" / "data" / "documents.json"
SEED = 7

REGIONS = ["the Northern Reach", "the Lowland Coast", "the Iron Valley", "the Eastern Marches"]
CITIES = ["Varnholm", "Kessing", "Orlu", "Brackwater", "Tessely", "Halvard", "Mirren", "Osterby", "Calder Bay",
          "Redwick", "Lunmark", "Skellan", "Veyport", "Grauden", "Ilsby", "Marrow Hill"]
CITY_KINDS = ["port city", "market town", "river city", "mill town", "cathedral city", "railway town"]

INDUSTRIES: dict[str, dict[str, list[str]]] = {
    "steel": {"company": ["Steel", "Iron & Steel", "Steelworks"], "plant": ["Steelworks", "Rolling Mill", "Foundry"],
              "product": ["rail profile", "structural beam", "steel plate"]},
    "chemicals": {"company": ["Chemical", "Chemicals"], "plant": ["Chemical Works", "Refinery"],
                  "product": ["industrial solvent", "epoxy resin", "soda ash blend"]},
    "cement": {"company": ["Cement", "Building Materials"], "plant": ["Cement Works", "Kilns"],
               "product": ["Portland cement grade", "masonry mortar"]},
    "glass": {"company": ["Glassworks", "Glass"], "plant": ["Glassworks", "Glass Plant"],
              "product": ["float glass sheet", "glass bottle", "lens blank"]},
    "paper": {"company": ["Paper Mills", "Paper"], "plant": ["Paper Mill", "Pulp Mill"],
              "product": ["kraft paper grade", "newsprint grade", "corrugated board"]},
    "textiles": {"company": ["Textiles", "Weaving Company"], "plant": ["Spinning Mill", "Weaving Shed"],
                 "product": ["cotton canvas cloth", "wool serge cloth", "linen twill cloth"]},
    "machinery": {"company": ["Machine Works", "Engineering"], "plant": ["Engineering Works", "Assembly Plant"],
                  "product": ["lathe", "centrifugal pump", "diesel engine"]},
    "electronics": {"company": ["Electrics", "Instruments"], "plant": ["Electronics Plant", "Instrument Factory"],
                    "product": ["relay", "power meter", "signal transformer"]},
}
COMPANY_ROOTS = ["Norvik", "Halbeck", "Ostmark", "Tarrow", "Brenn", "Vellum", "Corvane", "Aldric", "Pellam", "Rusk",
                 "Sorvell", "Dray", "Kettram", "Laske", "Mordaunt", "Quillon", "Ferrant", "Gask", "Hollis", "Irvane",
                 "Jessamy", "Lorne", "Marl", "Nettlestone", "Orrin", "Pruett", "Ravel", "Stann", "Tolley", "Umber",
                 "Wexley", "Yarrow"]
PLACES = ["Northgate", "Eastfield", "Riverside", "Saltmarsh", "Highcross", "Ashby", "Millbrook", "Stonebridge",
          "Harrow Lane", "Coldwater", "Fenwick", "Greyfriars", "Kingsmere", "Longdale", "Marsh End", "Oakridge",
          "Pinecrest", "Quarry Road", "Redmoor", "Sandholt", "Thornbury", "Upper Weir", "Wolds", "Yardley",
          "Brookhaven", "Copperfield", "Deepdale", "Elmstead", "Foxhollow", "Glenbrook", "Hatchmere", "Ironside",
          "Juniper Bank", "Kestle", "Lockgate", "Moorfield", "Netherby", "Old Quay", "Pelling", "Ravenscar",
          "Southwick", "Tidewater", "Underhill", "Vale End", "Westmere", "Alderholt", "Blackwell", "Crossfell",
          "Dunhollow", "Eastwold", "Farrow Point", "Gullsbridge"]
BRANDS = ["Kestrel", "Aster", "Lumen", "Corvid", "Halcyon", "Juniper", "Kite", "Larch", "Merlin", "Nimbus", "Osprey",
          "Plover", "Quartz", "Raven", "Sable", "Tern", "Umbra", "Vesper", "Wren", "Yew", "Alder", "Birch", "Cobalt",
          "Dunlin", "Egret", "Fern", "Garnet", "Heron", "Ibis", "Jasper", "Kelp", "Linnet", "Marten", "Onyx",
          "Petrel", "Rook", "Siskin", "Teal", "Upland", "Vole", "Willet", "Zircon", "Amber", "Basalt", "Cinder",
          "Dove", "Ember", "Flint", "Gannet", "Hawthorn", "Iris", "Jay", "Kingfisher", "Lark", "Moth", "Nightjar",
          "Otter", "Pike", "Saffron", "Thistle"]
FIRST = [("Edda", "she"), ("Tomas", "he"), ("Ilse", "she"), ("Marek", "he"), ("Sanne", "she"), ("Oren", "he"),
         ("Liv", "she"), ("Anselm", "he"), ("Brigit", "she"), ("Casimir", "he"), ("Dagny", "she"), ("Emil", "he"),
         ("Freya", "she"), ("Gustav", "he"), ("Hedda", "she"), ("Ivo", "he"), ("Jorun", "she"), ("Kasper", "he"),
         ("Leona", "she"), ("Magnus", "he"), ("Nora", "she"), ("Otto", "he"), ("Petra", "she"), ("Rune", "he"),
         ("Signe", "she"), ("Tobias", "he"), ("Ulla", "she"), ("Viggo", "he"), ("Wilma", "she"), ("Yannick", "he"),
         ("Agnes", "she"), ("Bertil", "he"), ("Cora", "she"), ("Desmond", "he"), ("Elin", "she"), ("Fabian", "he"),
         ("Greta", "she"), ("Henrik", "he"), ("Ingrid", "she"), ("Jonas", "he")]
SURNAMES = ["Varn", "Brandt", "Holm", "Lind", "Ostrander", "Kessel", "Mork", "Falk", "Strand", "Berg", "Dahl",
            "Eklund", "Frost", "Greve", "Hagen", "Isaksen", "Juhl", "Krog", "Lauritz", "Moen", "Nyberg", "Orm", "Palm",
            "Quist", "Rask", "Sand", "Thorsen", "Udd", "Vik", "Wessel"]

N_COMPANIES, N_PLANTS, N_PRODUCTS, N_ENGINEERS, N_TWIN_PAIRS = 32, 56, 60, 14, 6


def _a(phrase: str) -> str:
    return ("an " if phrase[0].lower() in "aeiou" else "a ") + phrase


def _list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class World:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.docs: dict[str, dict[str, Any]] = {}

    def add(self, doc_id: str, title: str, kind: str, **relations: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": doc_id, "title": title, "kind": kind, "summary": "", "body": "", "links": [], "facts": {},
            "city": None, "owner": None, "plant": None, "founder": None, "ceo": None, "employer": None,
        }
        doc.update(relations)
        self.docs[doc_id] = doc
        return doc

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs.values() if d["kind"] == kind]

    def pointing_at(self, kind: str, relation: str, doc_id: str) -> list[dict[str, Any]]:
        """The documents of ``kind`` whose ``relation`` is ``doc_id``, by id."""
        return sorted((d for d in self.of(kind) if d[relation] == doc_id), key=lambda d: d["id"])

    # --- the entities -------------------------------------------------------------------------------------------

    def build(self) -> None:
        rng = self.rng
        for i, name in enumerate(CITIES):
            self.add(f"CTY-{i + 1:02d}", name, "city", region=REGIONS[i % len(REGIONS)],
                     facts={"founded": rng.randint(1090, 1720), "population": rng.randrange(18_000, 640_000, 500)})
        cities = self.of("city")
        names = [(f, p, s) for s in SURNAMES for f, p in FIRST]
        rng.shuffle(names)
        people = iter(names)
        industries = list(INDUSTRIES)
        for i, root in enumerate(COMPANY_ROOTS[:N_COMPANIES]):
            industry = industries[i % len(industries)]
            founded = rng.randint(1846, 1994)
            company = self.add(f"CO-{i + 1:02d}", f"{root} {rng.choice(INDUSTRIES[industry]['company'])}", "company",
                               industry=industry, city=rng.choice(cities)["id"],
                               facts={"founded": founded, "employees": rng.randrange(400, 26_000, 10)})
            first, pronoun, surname = next(people)
            founder = self.add(f"PER-{len(self.of('person')) + 1:03d}", f"{first} {surname}", "person",
                               pronoun=pronoun, role="founder", employer=company["id"],
                               city=rng.choice(cities)["id"], facts={"born": founded - rng.randint(24, 52)})
            company["founder"] = founder["id"]
            if rng.random() < 0.72:
                first, pronoun, surname = next(people)
                ceo = self.add(f"PER-{len(self.of('person')) + 1:03d}", f"{first} {surname}", "person",
                               pronoun=pronoun, role="chief executive", employer=company["id"],
                               city=rng.choice(cities)["id"], facts={"born": rng.randint(1952, 1984)})
                company["ceo"] = ceo["id"]
        companies = self.of("company")
        for _ in range(N_ENGINEERS):
            first, pronoun, surname = next(people)
            self.add(f"PER-{len(self.of('person')) + 1:03d}", f"{first} {surname}", "person", pronoun=pronoun,
                     role="chief engineer", employer=rng.choice(companies)["id"], city=rng.choice(cities)["id"],
                     facts={"born": rng.randint(1950, 1990)})
        for person in self.of("person"):  # some facts are not recorded
            if rng.random() < 0.2:
                person["city"] = None
            if rng.random() < 0.2:
                del person["facts"]["born"]

        places = list(PLACES)
        rng.shuffle(places)
        plant_titles: list[tuple[str, str]] = []  # (title, industry)
        # every company runs a plant among those after the twin pairs, whose owners are drawn at random
        extra = rng.choices(companies, k=N_PLANTS - len(companies))
        rest = companies + extra[N_TWIN_PAIRS * 2:]
        rng.shuffle(rest)
        owners = extra[:N_TWIN_PAIRS * 2] + rest
        for i, owner in enumerate(owners):
            industry = owner["industry"]
            if i < N_TWIN_PAIRS * 2 and i % 2 == 1:  # the second of a pair takes the first's name
                title, industry = plant_titles[-1]
                pair = self.docs[f"PLT-{i:02d}"]
                city = rng.choice([c for c in cities if c["id"] != pair["city"]])["id"]
                owner = rng.choice([c for c in companies if c["id"] != pair["owner"] and c["industry"] == industry])
            else:
                title = f"{places.pop()} {rng.choice(INDUSTRIES[industry]['plant'])}"
                city = cities[i % len(cities)]["id"] if i < len(cities) * 2 else rng.choice(cities)["id"]
            plant_titles.append((title, industry))
            opened = rng.randint(max(owner["facts"]["founded"], 1850), 2016)
            self.add(f"PLT-{i + 1:02d}", title, "plant", industry=industry, city=city, owner=owner["id"],
                     facts={"opened": opened, "capacity_t": rng.randrange(8_000, 900_000, 1000)})
        assert all(any(p["owner"] == c["id"] for p in self.of("plant")) for c in companies)
        assert all(any(p["city"] == c["id"] for p in self.of("plant")) for c in cities)
        # questions about twin plants must reach both branches: some of their founders' birthplaces are unknown
        twins = [p for p in self.of("plant") if sum(q["title"] == p["title"] for q in self.of("plant")) > 1]
        for k, plant in enumerate(twins[:6]):
            founder = self.docs[self.docs[plant["owner"]]["founder"]]
            if k in (0, 3):
                founder["city"] = None
            elif founder["city"] is None:
                founder["city"] = rng.choice(cities)["id"]

        brands = list(BRANDS)
        rng.shuffle(brands)
        plants = self.of("plant")
        for i in range(N_PRODUCTS):
            plant = plants[i % len(plants)] if i < len(plants) else rng.choice(plants)
            category = rng.choice(INDUSTRIES[plant["industry"]]["product"])
            code = rng.choice([f"{rng.randint(2, 9)}", f"{rng.randint(1, 9)}0", f"R{rng.randint(10, 99)}",
                               f"Mk {rng.choice(['II', 'III', 'IV'])}"])
            self.add(f"PRD-{i + 1:02d}", f"{brands[i]} {code}", "product", category=category, plant=plant["id"],
                     facts={"launched": rng.randint(plant["facts"]["opened"], 2023)})

    # --- the text -----------------------------------------------------------------------------------------------

    def mention(self, doc: dict[str, Any], target_id: str) -> str:
        if target_id not in doc["links"]:
            doc["links"].append(target_id)
        return str(self.docs[target_id]["title"])

    def write(self) -> None:
        for doc in self.docs.values():
            sentences = getattr(self, f"_{doc['kind']}")(doc)
            doc["summary"] = sentences[0]
            doc["body"] = " ".join(sentences)
            doc["links"].sort()

    def _city(self, d: dict[str, Any]) -> list[str]:
        rng = self.rng
        f = d["facts"]
        out = [f"{d['title']} is {_a(rng.choice(CITY_KINDS))} in {d['region']}.",
               f"It was founded in {f['founded']} and has about {f['population']:,} inhabitants."]
        plants = self.pointing_at("plant", "city", d["id"])
        if len(plants) == 1:
            out.append(f"The only industrial plant in the city is {self.mention(d, plants[0]['id'])}.")
        elif plants:
            names = [self.mention(d, p["id"]) for p in plants]
            out.append(f"Its {len(plants)} industrial plants are {_list(names)}.")
        hq = self.pointing_at("company", "city", d["id"])
        if hq:
            names = [self.mention(d, c["id"]) for c in hq]
            verb = "has its" if len(hq) == 1 else "have their"
            out.append(f"{_list(names)} {verb} headquarters here.")
        return out

    def _company(self, d: dict[str, Any]) -> list[str]:
        rng = self.rng
        f = d["facts"]
        city = self.mention(d, d["city"])
        founder = self.mention(d, d["founder"])
        out = [rng.choice([f"{d['title']} is {_a(d['industry'])} company headquartered in {city}.",
                           f"{d['title']} is {_a(d['industry'])} manufacturer based in {city}."]),
               rng.choice([f"It was founded in {f['founded']} by {founder}.",
                           f"{founder} founded the company in {f['founded']}."])]
        if d["ceo"]:
            ceo = self.mention(d, d["ceo"])
            out.append(rng.choice([f"Its chief executive is {ceo}.", f"The company is led by {ceo}.",
                                   f"{ceo} has been its chief executive since {rng.randint(2009, 2023)}."]))
        else:
            out.append(rng.choice(["The company has not made public who leads it today.",
                                   "Who leads the company today is not recorded."]))
        plants = self.pointing_at("plant", "owner", d["id"])
        names = [f"{self.mention(d, p['id'])} in {self.mention(d, p['city'])}" for p in plants]
        if len(names) == 1:
            out.append(f"It runs a single plant, {names[0]}.")
        else:
            out.append(f"It runs {len(names)} plants: {_list(names)}.")
        out.append(f"It employs about {f['employees']:,} people.")
        return out

    def _plant(self, d: dict[str, Any]) -> list[str]:
        rng = self.rng
        f = d["facts"]
        city = self.mention(d, d["city"])
        owner = self.mention(d, d["owner"])
        out = [f"{d['title']} is {_a(d['industry'])} plant in {city}.",
               rng.choice([f"It opened in {f['opened']} and belongs to {owner}.",
                           f"Opened in {f['opened']}, it is run by {owner}.",
                           f"The plant, opened in {f['opened']}, is owned by {owner}."])]
        products = [p for p in self.of("product") if p["plant"] == d["id"]]
        if products:
            names = [self.mention(d, p["id"]) for p in products]
            out.append(f"It makes the {_list(names)}.")
        out.append(f"Its yearly capacity is about {f['capacity_t']:,} tonnes.")
        return out

    def _product(self, d: dict[str, Any]) -> list[str]:
        rng = self.rng
        plant = self.docs[d["plant"]]
        where = f"{self.mention(d, plant['id'])} in {self.mention(d, plant['city'])}"
        return [f"The {d['title']} is {_a(d['category'])} made at {where}.",
                rng.choice([f"It was launched in {d['facts']['launched']}.",
                            f"It first went on sale in {d['facts']['launched']}."]),
                rng.choice(["It is sold mostly to contractors in the region.", "Much of the output is exported.",
                            "It is known for its consistent quality.", "It replaced an older line made elsewhere."])]

    def _person(self, d: dict[str, Any]) -> list[str]:
        rng = self.rng
        they, their = d["pronoun"], {"she": "her", "he": "his"}[d["pronoun"]]
        employer = self.mention(d, d["employer"])
        company = self.docs[d["employer"]]
        if d["role"] == "founder":
            out = [f"{d['title']} is the industrialist who founded {employer} in {company['facts']['founded']}."]
        elif d["role"] == "chief executive":
            out = [f"{d['title']} is the chief executive of {employer}."]
        else:
            out = [f"{d['title']} is the chief engineer at {employer}."]
        born, city = d["facts"].get("born"), d["city"]
        if born and city:
            out.append(rng.choice([f"{they.capitalize()} was born in {self.mention(d, city)} in {born}.",
                                   f"Born in {born} in {self.mention(d, city)}, {they} trained as an engineer."]))
        elif born:
            out.append(f"{they.capitalize()} was born in {born}; where is not recorded.")
        elif city:
            out.append(f"{they.capitalize()} was born in {self.mention(d, city)}; {their} year of birth is not "
                       "recorded.")
        else:
            out.append(f"Little is recorded of {their} early life.")
        return out


def main() -> None:
    world = World(SEED)
    world.build()
    world.write()
    keep = ("id", "title", "kind", "summary", "body", "links", "facts", "city", "owner", "plant", "founder", "ceo",
            "employer")
    docs = [{k: d[k] for k in keep} for d in sorted(world.docs.values(), key=lambda d: d["id"])]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(docs, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    counts: dict[str, int] = {}
    for d in docs:
        counts[d["kind"]] = counts.get(d["kind"], 0) + 1
    print(f"{len(docs)} documents -> {OUT}: {counts}")


if __name__ == "__main__":
    main()
