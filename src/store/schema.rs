//! The schema's migrations, embedded in the binary. sqlx's `migrate!` macro would read the folder
//! at compile time, but its macros pull a second, host-side build of SQLite and of sqlx into every
//! cold build (about 80 s of CPU on the CI machine); the list below is the same thing by hand,
//! and a test keeps it equal to `migrations/`. Each migration's checksum is computed the way the
//! macro computes it, so databases made by earlier builds open unchanged.

use std::borrow::Cow;
use std::sync::LazyLock;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// One file of `migrations/` (or of a backend's folder in it): its name without `.sql`, and
/// its text.
macro_rules! migration {
    ($name:literal) => {
        migration!("", $name)
    };
    ($folder:literal, $name:literal) => {
        (
            $name,
            include_str!(concat!("../../migrations/", $folder, $name, ".sql")),
        )
    };
}

/// Every migration, in order. Add a file to `migrations/` and a line here.
const MIGRATIONS: &[(&str, &str)] = &[
    migration!("0001_init"),
    migration!("0002_judgment_pick_index"),
    migration!("0003_queue_columns"),
    migration!("0004_items_fts"),
    migration!("0005_queue_sort_indexes"),
    migration!("0006_student_labels"),
    migration!("0007_queue_label_index"),
    migration!("0008_pair_judgment"),
    migration!("0009_augmented_index"),
    migration!("0010_calibrations"),
    migration!("0011_annotations_before_json"),
    migration!("0012_queue_to_review"),
    migration!("0013_teach_leases"),
    migration!("0014_annotator_roles"),
];

/// PostgreSQL's migrations (`migrations/postgres/`): the same versions and names as SQLite's,
/// each the same change in PostgreSQL's dialect.
const PG_MIGRATIONS: &[(&str, &str)] = &[
    migration!("postgres/", "0001_init"),
    migration!("postgres/", "0002_judgment_pick_index"),
    migration!("postgres/", "0003_queue_columns"),
    migration!("postgres/", "0004_items_fts"),
    migration!("postgres/", "0005_queue_sort_indexes"),
    migration!("postgres/", "0006_student_labels"),
    migration!("postgres/", "0007_queue_label_index"),
    migration!("postgres/", "0008_pair_judgment"),
    migration!("postgres/", "0009_augmented_index"),
    migration!("postgres/", "0010_calibrations"),
    migration!("postgres/", "0011_annotations_before_json"),
    migration!("postgres/", "0012_queue_to_review"),
    migration!("postgres/", "0013_teach_leases"),
    migration!("postgres/", "0014_annotator_roles"),
];

pub(super) static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| migrator(MIGRATIONS));
pub(super) static PG_MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| migrator(PG_MIGRATIONS));

fn migrator(files: &[(&str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(name, sql)| {
                // As sqlx reads a folder: `VERSION_WORDS`, the words' underscores as spaces.
                let (version, words) = name.split_once('_').expect("VERSION_WORDS");
                Migration::new(
                    version.parse().expect("a numeric version"),
                    Cow::Owned(words.replace('_', " ")),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql_files(folder: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        files
    }

    /// The list names every file of `migrations/`, in order, and the description sqlx stored
    /// for each is the file name's words.
    #[test]
    fn the_embedded_list_is_the_migrations_folder() {
        let files = sql_files("migrations");
        let listed: Vec<String> = MIGRATIONS.iter().map(|(n, _)| format!("{n}.sql")).collect();
        assert_eq!(files, listed);
        let described: Vec<(i64, &str)> = MIGRATOR
            .iter()
            .map(|m| (m.version, &*m.description))
            .collect();
        assert_eq!(described[..2], [(1, "init"), (2, "judgment pick index")]);
        assert_eq!(described.len(), files.len());
    }

    /// PostgreSQL's folder is listed whole, and holds a file of the same name for every one of
    /// SQLite's: the two schemas move in step, so one version number means one schema.
    #[test]
    fn postgres_migrations_are_in_step_with_sqlite() {
        let files = sql_files("migrations/postgres");
        let listed: Vec<String> = PG_MIGRATIONS
            .iter()
            .map(|(n, _)| format!("{n}.sql"))
            .collect();
        assert_eq!(files, listed);
        assert_eq!(files, sql_files("migrations"));
        let versions = |m: &Migrator| m.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(versions(&PG_MIGRATOR), versions(&MIGRATOR));
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
