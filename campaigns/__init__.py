"""WeChat official-account operations (公众号运营): menus, pushes, channel QR
codes, package cards and conversion funnels."""
