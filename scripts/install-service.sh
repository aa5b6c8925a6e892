#!/usr/bin/env bash
# Install the service for real (run as root on the server):
#   sudo bash scripts/install-service.sh
# - a system user `shegong` that owns the data folder /var/lib/shegong and nothing else;
# - the code in /opt/shegong (this checkout, copied) with its .venv (scripts/install.sh);
# - /etc/shegong/config.toml (data paths under /var/lib/shegong, secure cookies, your public URL)
#   and /etc/shegong/env for the secrets, readable by shegong only (mode 0600);
# - the systemd unit deploy/shegong.service: restart on failure, logs in the system journal.
# Run it again after `git pull` to upgrade: the data stays, the schema migrates at start.
# Environment: SHEGONG_PUBLIC_URL (default https://shegong.example.org), SHEGONG_DATABASE_URL
# (default SQLite in /var/lib/shegong), NO_SYSTEMD=1 to stop before systemctl (containers).
set -euo pipefail
if [[ $EUID -ne 0 ]]; then echo "run as root: sudo bash $0" >&2; exit 2; fi
src="$(cd "$(dirname "$0")/.." && pwd)"
app=/opt/shegong etc=/etc/shegong data=/var/lib/shegong
public_url=${SHEGONG_PUBLIC_URL:-https://shegong.example.org}
database_url=${SHEGONG_DATABASE_URL:-sqlite:///$data/bot.db}

id shegong >/dev/null 2>&1 || useradd --system --home-dir "$data" --shell /usr/sbin/nologin shegong
install -d -o shegong -g shegong -m 0750 "$data" "$data/knowledge"
install -d -o root -g shegong -m 0750 "$etc"
install -d -o root -g root -m 0755 "$app"

# the code (not the data): copy this checkout without its venv, caches or local data
tar -C "$src" --exclude=.venv --exclude=.git --exclude=data --exclude='bench/.cache' -cf - . | tar -C "$app" -xf -
if [[ -z "$(ls -A "$data/knowledge")" ]]; then cp -r "$app/knowledge/." "$data/knowledge/"; fi
chown -R shegong:shegong "$data"
# the venv's interpreter must be one the service user can run: the system's python3, not one under /root
py=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
if ! runuser -u shegong -- "$py" -c "" 2>/dev/null; then
    echo "$py cannot be run by the shegong user; set PYTHON to a system-wide Python 3.11+" >&2; exit 2
fi
if [[ -x "$app/.venv/bin/python" ]] && ! runuser -u shegong -- "$app/.venv/bin/python" -c "" 2>/dev/null; then
    rm -rf "$app/.venv"  # made from an interpreter the service user cannot reach: make it again
fi
(cd "$app" && PYTHON="$py" bash scripts/install.sh)

if [[ ! -f "$etc/config.toml" ]]; then  # never overwrite an admin's edits
    sed -e "s#^docs_dir = .*#docs_dir = \"$data/knowledge\"#" \
        -e "s#^index_dir = .*#index_dir = \"$data/index\"#" \
        -e "s#^url = \"sqlite.*#url = \"$database_url\"#" \
        -e "s#^journal_dir = .*#journal_dir = \"$data/journal\"#" \
        -e "s#^organisation_file = .*#organisation_file = \"$app/district.toml\"#" \
        -e "s#^categories_file = .*#categories_file = \"$app/categories.toml\"#" \
        -e "s#^secure_cookies = .*#secure_cookies = true#" \
        -e "s#^public_url = .*#public_url = \"$public_url\"#" \
        "$app/config.toml" > "$etc/config.toml"
    chown root:shegong "$etc/config.toml"; chmod 0640 "$etc/config.toml"
fi
if [[ ! -f "$etc/env" ]]; then
    cat > "$etc/env" <<'ENV'
# secrets of the 数字社工 service (KEY=value, one a line); empty: that channel is off
TELEGRAM_BOT_TOKEN=
TELEGRAM_WEBHOOK_SECRET=
WECHAT_TOKEN=
WECHAT_AES_KEY=
WECHAT_APP_SECRET=
LLM_API_KEY=
METRICS_TOKEN=
ENV
fi
chown shegong:shegong "$etc/env"; chmod 0600 "$etc/env"
install -o root -g root -m 0644 "$app/deploy/shegong.service" /etc/systemd/system/shegong.service

if [[ "${NO_SYSTEMD:-0}" == 1 ]] || ! command -v systemctl >/dev/null || [[ ! -d /run/systemd/system ]]; then
    echo "installed; systemd is not running here: start it with"
    echo "  sudo -u shegong env \$(cat $etc/env | grep -v '^#' | xargs) $app/.venv/bin/python -m bot --config $etc/config.toml"
    exit 0
fi
systemctl daemon-reload
systemctl enable --now shegong
systemctl --no-pager --lines=5 status shegong || true
echo "installed: journalctl -u shegong -f follows the logs; put deploy/Caddyfile or deploy/nginx.conf in front"
