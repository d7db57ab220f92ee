"""What configuration parsing on both sides shares: hand-edited YAML checked against a JSON
Schema, and listener addresses. A core: it imports no side and nothing of the composition root.
"""
