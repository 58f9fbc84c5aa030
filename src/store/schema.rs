//! The schema's migrations, embedded in the binary. sqlx's `migrate!` macro would read the folder
//! at compile time, but its macros pull a second, host-side build of SQLite and of sqlx into every
//! cold build (about 80 s of CPU on the CI machine); the list below is the same thing by hand,
//! and a test keeps it equal to `migrations/`. Each migration's checksum is computed the way the
//! macro computes it, so databases made by earlier builds open unchanged.

use std::borrow::Cow;
use std::sync::LazyLock;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// Every migration: version, description (the file name's words) and SQL. Add a file to
/// `migrations/` and a line here.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (
        2,
        "judgment pick index",
        include_str!("../../migrations/0002_judgment_pick_index.sql"),
    ),
    (
        3,
        "queue columns",
        include_str!("../../migrations/0003_queue_columns.sql"),
    ),
    (
        4,
        "items fts",
        include_str!("../../migrations/0004_items_fts.sql"),
    ),
    (
        5,
        "queue sort indexes",
        include_str!("../../migrations/0005_queue_sort_indexes.sql"),
    ),
    (
        6,
        "student labels",
        include_str!("../../migrations/0006_student_labels.sql"),
    ),
    (
        7,
        "queue label index",
        include_str!("../../migrations/0007_queue_label_index.sql"),
    ),
    (
        8,
        "pair judgment",
        include_str!("../../migrations/0008_pair_judgment.sql"),
    ),
];

pub(super) static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    /// The list names every file of `migrations/`, in order, with the file's own words and text.
    #[test]
    fn the_embedded_list_is_the_migrations_folder() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (file, &(version, description, sql)) in files.iter().zip(MIGRATIONS) {
            let (number, words) = file.trim_end_matches(".sql").split_once('_').unwrap();
            assert_eq!(number.parse::<i64>().unwrap(), version, "{file}");
            assert_eq!(words.replace('_', " "), description, "{file}");
            assert_eq!(
                std::fs::read_to_string(dir.join(file)).unwrap(),
                sql,
                "{file}"
            );
        }
    }

    /// The checksums sqlx stored in every database made so far (read back from one that the
    /// `migrate!` build made): building the list at run time keeps them, and a migration that has
    /// shipped must never change, or every existing database would refuse to open.
    #[test]
    fn checksums_are_the_ones_earlier_builds_stored() {
        const STORED: [&str; 8] = [
            "a29091d25d623bb7d0e4184abefb84660229476c188fe8c1f216518932f3676f0eb5d8b6fa16235da02742747ae85668",
            "556aef6b1ee4476df7ec1ee075aa27fe34c1b3b7b1dddacef7e0eb5ce0948f74b2271b47b420c30b6fd74be6b189c8f9",
            "076569e62e1e9f6c61af756730eee4c4d54d1db6ce85a64b19eb1b92a67a1b240784f99a1c67980eb540ff488f769331",
            "98c2369a88b4d5bc44e9cb26d19ebce958cfcf9c448e90f9d8b587391678a6cb8c3f5c8e5b149552ee210442daf94572",
            "a81bcef1b32667366b716413a0a38e3ce993c5f1871e17bd5e5ff9130f412d084b1cbfce605981dfc11758fd647bac9f",
            "2c6078eea66a52a920b58a3e43a33cfb93548423b588688737f9dc891cf475000ae0d931b14bf01f866b7e2daa7873aa",
            "daf34f1e85ccc092e7bbd511a25424159596c5a4e09ec3b439e7d066af36cab0346c9b7a68940d806b866aa7d69acec7",
            "f57c454ed68f0c00bb16c0aae612b03683596952388df441ee32959a920da4ffe0bea301f26b1c9ce5e1a87fc95adc3b",
        ];
        let ours: Vec<String> = MIGRATOR.iter().map(|m| hex::encode(&*m.checksum)).collect();
        assert_eq!(ours[..STORED.len()], STORED);
    }
}
