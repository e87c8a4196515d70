-- Example queries as the analyst (psql "$LOGINS_ANALYST_DSN"); a test runs each of them as the analyst.

-- The last week at a glance: logins, users and the new-device logins of each day.
SELECT s.create_date, s.logins, s.users, s.devices, s.addresses,
       (SELECT count(*) FROM new_device_logins n WHERE n.create_date = s.create_date) AS new_device_logins
FROM daily_login_stats s WHERE s.create_date > current_date - 7 ORDER BY 1;

-- Logins by device type and by locale on the latest day.
SELECT create_date, by_device_type, by_locale FROM daily_login_stats ORDER BY create_date DESC LIMIT 1;

-- Devices shared by the most accounts, over the whole history.
SELECT masked_device_id, count(*) AS days, max(users) AS most_users_in_a_day, sum(logins) AS logins
FROM shared_devices GROUP BY 1 ORDER BY most_users_in_a_day DESC, logins DESC LIMIT 20;

-- Addresses behind a burst of accounts today.
SELECT masked_ip, users, logins FROM shared_addresses WHERE create_date = current_date ORDER BY users DESC LIMIT 20;

-- Users who signed in from a new device on a shared device the same day (a takeover pattern).
SELECT n.create_date, n.user_id, n.masked_device_id, d.users AS users_on_that_device
FROM new_device_logins n
JOIN shared_devices d ON d.create_date = n.create_date AND d.masked_device_id = n.masked_device_id
ORDER BY d.users DESC LIMIT 20;

-- How fast the newest app version spreads: its share of each day's users.
SELECT create_date, app_version_text, share FROM app_version_adoption
WHERE app_version = (SELECT max(app_version) FROM app_version_adoption) ORDER BY create_date;
