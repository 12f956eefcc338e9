"""The GraphQL face (DESIGN §7b): toolkit (base, errors, limits, mutations), view and schema."""
