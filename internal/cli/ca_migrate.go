package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/pki"
)

func newCAMigrateCmd(env *Env) *cobra.Command {
	var f caFlags
	var from, to string
	cmd := &cobra.Command{
		Use:   "migrate --dir DIR --from sqlite --to postgres://USER@HOST/DB",
		Short: "Move the CA's inventory from SQLite to PostgreSQL",
		Long: `Copy every certificate, revocation and stored CRL, the CRL number, the
change counter, the spent enrollment tokens (so none can be replayed) and the
enrollment records from DIR/inventory.db into an empty PostgreSQL database,
check that the counts match, and point the CA (DIR/ca.json) at PostgreSQL. The
SQLite inventory is locked against 'ca issue' and 'ca revoke' meanwhile, and
left in place afterwards as a backup that nothing reads any more. Needs no
CA passphrase: nothing is signed.

The URL carries no password: put it in ~/.pgpass or a file named by
PGPASSFILE.`,
		Example: `  createdb gatehouse_ca
  gatehouse ca migrate --dir pki --from sqlite --to postgres://gatehouse@db.example.com/gatehouse_ca`,
		Args: cobra.NoArgs,
		RunE: caRunE(func() error {
			if from != "sqlite" {
				return usageError(fmt.Errorf("--from %q: only sqlite can be moved from", from))
			}
			counts, err := pki.MigrateToPostgres(env.ctx(), f.dir, to)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "moved the inventory of %s to PostgreSQL: %s; counts verified\n", f.dir, counts)
			fmt.Fprintf(env.Stdout, "  %s now names the database; %s stays as a backup\n", pki.SettingsFile, pki.InventoryFile)
			return nil
		}),
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&from, "from", "sqlite", "the inventory to move from: sqlite (DIR/"+pki.InventoryFile+")")
	cmd.Flags().StringVar(&to, "to", "", "the empty PostgreSQL database to move to (required)")
	cmd.MarkFlagRequired("to")
	return cmd
}
