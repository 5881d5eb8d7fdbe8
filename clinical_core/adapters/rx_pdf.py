"""处方笺 PDF: a jinja2 template rendered by WeasyPrint with CJK fonts (Noto CJK or
WenQuanYi, installed by ``make setup``), and the QR code drawn locally by segno."""

from __future__ import annotations

from datetime import datetime

import segno
from jinja2 import Environment, select_autoescape

from clinical_core.domain.money import format_fen
from clinical_core.domain.time import to_local
from clinical_core.services.rx_print import Printout

TEMPLATE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><style>
@page { size: A5; margin: 10mm 10mm 12mm 10mm;
        @bottom-center { content: "第 " counter(page) " 页 / 共 " counter(pages) " 页"; font-size: 7pt; color: #666; } }
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; font-size: 9pt; margin: 0; color: #111; }
h1 { text-align: center; font-size: 15pt; margin: 0 0 1mm 0; letter-spacing: 1mm; }
.hospital { text-align: center; font-size: 11pt; font-weight: bold; }
.kind { position: absolute; top: 0; right: 0; border: 0.3mm solid #111; padding: 0.5mm 2mm; font-size: 9pt; }
.meta { width: 100%; border-collapse: collapse; margin-top: 2mm; border-bottom: 0.4mm solid #111; }
.meta td { padding: 0.8mm 0; }
.label { color: #555; }
.rp { font-family: serif; font-size: 16pt; font-weight: bold; margin: 2mm 0 1mm 0; }
table.items { width: 100%; border-collapse: collapse; }
table.items th { text-align: left; border-bottom: 0.2mm solid #999; font-weight: normal; color: #555; padding: 0.8mm; }
table.items td { padding: 1mm 0.8mm; vertical-align: top; }
.usage { color: #333; font-size: 8.5pt; }
.total { text-align: right; margin-top: 1mm; border-top: 0.2mm solid #999; padding-top: 1mm; }
.signers { width: 100%; border-collapse: collapse; margin-top: 3mm; border-top: 0.4mm solid #111; }
.signers td { vertical-align: top; padding: 1.5mm 1mm 0 0; width: 50%; }
.signer-name { font-size: 11pt; font-weight: bold; }
.small { font-size: 7pt; color: #444; word-break: break-all; }
.qr { margin-top: 3mm; display: flex; align-items: center; }
.qr svg { width: 34mm; height: 34mm; flex: none; }
.qr .text { margin-left: 3mm; }
.note { font-size: 7.5pt; color: #444; margin-top: 2mm; }
</style></head><body>
<div style="position: relative">
<div class="kind">普通处方</div>
<div class="hospital">{{ p.hospital }}</div>
<h1>互联网医院处方笺</h1>
</div>
<table class="meta">
<tr><td><span class="label">处方编号：</span>{{ p.prescription_id }}（第 {{ p.version }} 版）</td>
    <td><span class="label">开具日期：</span>{{ issued }}</td></tr>
<tr><td><span class="label">姓名：</span>{{ p.patient_name }}　<span class="label">性别：</span>{{ p.patient_sex }}
    　<span class="label">年龄：</span>{{ p.patient_age }} 岁</td>
    <td><span class="label">科别：</span>{{ p.department or "—" }}</td></tr>
<tr><td colspan="2"><span class="label">临床诊断：</span>{% for code, name in p.diagnoses %}{{ name }}（{{ code }}）{% if not loop.last %}；{% endif %}{% endfor %}</td></tr>
</table>
<div class="rp">Rp.</div>
<table class="items">
<tr><th>#</th><th>药品名称及规格</th><th>数量</th><th>天数</th><th>金额</th></tr>
{% for item in p.items %}<tr>
<td>{{ loop.index }}</td>
<td>{{ item.generic_name }}　{{ item.specification }}<div class="usage">用法：{{ item.usage }}</div></td>
<td>{{ item.quantity }}</td><td>{{ item.days_supply }}</td><td>{{ money(item.quantity * item.price_fen) }}</td>
</tr>{% endfor %}
</table>
<div class="total">药品金额合计：{{ money(p.total_fen) }}</div>
{% if p.long_term_reason %}<div class="note">延长用量理由：{{ p.long_term_reason }}</div>{% endif %}
<table class="signers"><tr>
{% for s in p.signers %}<td>
<div class="label">{{ s.role_label }}（电子签名）</div>
<div class="signer-name">{{ s.name }}{% if s.title %}　<span style="font-weight: normal; font-size: 9pt">{{ s.title }}</span>{% endif %}</div>
<div class="small">签名时间：{{ local(s.signed_at) }}</div>
<div class="small">证书序列号：{{ s.serial }}</div>
<div class="small">签名指纹：{{ s.fingerprint }}</div>
</td>{% endfor %}
</tr></table>
<div class="qr">{{ qr | safe }}<div class="text">
<div><b>扫码核验</b></div>
<div class="small">药房凭本院 CA 证书离线核验医师签名与药师审核签名；联网时核对处方是否在打印后被修改。</div>
<div class="small">处方摘要（SHA-256）：{{ p.canonical_sha256 }}</div>
</div></div>
<div class="note">本处方自开具之日起 {{ p.valid_days }} 日内有效，仅限调配一次；已调配的处方不得再次使用。
打印时间：{{ local(p.printed_at) }}　状态：{{ p.status_label }}</div>
</body></html>"""


def _local(instant: datetime) -> str:
    return to_local(instant).strftime("%Y-%m-%d %H:%M")


def render_html(p: Printout) -> str:
    env = Environment(autoescape=select_autoescape(default=True))
    qr = segno.make(p.qr_text, error="m").svg_inline(scale=4, border=2)
    return env.from_string(TEMPLATE).render(p=p, qr=qr, issued=to_local(p.issued_at).strftime("%Y-%m-%d"),
                                            local=_local, money=format_fen)


def render_pdf(p: Printout) -> bytes:
    from weasyprint import HTML

    return HTML(string=render_html(p)).write_pdf()
