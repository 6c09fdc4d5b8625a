-- Source tables of pipeline-spec.md section 1. Idempotent: safe to run on every load.
-- Every column is nullable except the key, as in the original database.
CREATE TABLE IF NOT EXISTS pinterest_data (
  `index` INT NOT NULL PRIMARY KEY,
  unique_id VARCHAR(36) NULL,
  title TEXT NULL,
  description TEXT NULL,
  poster_name TEXT NULL,
  follower_count VARCHAR(32) NULL,
  tag_list TEXT NULL,
  is_image_or_video VARCHAR(64) NULL,
  image_src TEXT NULL,
  downloaded INT NULL,
  save_location TEXT NULL,
  category VARCHAR(64) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS geolocation_data (
  ind INT NOT NULL PRIMARY KEY,
  `timestamp` DATETIME NULL,
  latitude DOUBLE NULL,
  longitude DOUBLE NULL,
  country VARCHAR(255) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS user_data (
  ind INT NOT NULL PRIMARY KEY,
  first_name VARCHAR(255) NULL,
  last_name VARCHAR(255) NULL,
  age INT NULL,
  date_joined DATETIME NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
