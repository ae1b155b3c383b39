"""Evidence an audit leaves behind, checkable by anyone: hash-chained trails, manifests and signatures.

Django-free and light (stdlib, plus ``cryptography`` for signatures), so ``assay audit verify`` runs
on an auditor's laptop with no server and no audit extra.
"""
