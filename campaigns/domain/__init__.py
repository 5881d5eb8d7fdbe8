"""Pure rules of WeChat operations: WeChat's own limits, channel scenes, funnels (standard library only)."""
