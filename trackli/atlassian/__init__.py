"""Everything that speaks to Atlassian: OAuth 2.0 (3LO), API tokens and the Confluence v2 client."""
