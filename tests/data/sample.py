def add(a, b):
    """Return the sum."""
    return a + b


class Counter:
    def __init__(self, start=0):
        self.value = start

    def step(self, by=1):
        self.value += by
        return self.value
