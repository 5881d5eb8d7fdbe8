"""Operations reports (运营报表): one metrics registry, Excel and PDF reports.
Reads the other packages' data, never writes it."""
