"""Lookups the ORM lacks."""

from django.db.models.lookups import In


class InArray(In):
    """`column IN (...)`, but on PostgreSQL `column = ANY(%s)` with the values as one array (issue 15):
    a page's 100 literal ids cost the server more to parse and plan than the joins they filter, and
    psycopg does not cache the conversion of a query with more than 50 parameters; one array costs
    neither. Use as `filter(InArray(F("pk"), ids))` with a list of non-null values."""

    @staticmethod
    def one_array(connection) -> bool:
        """Whether the values are one parameter on this connection (else one each)."""
        return connection.vendor == "postgresql"

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, list(self.rhs))
