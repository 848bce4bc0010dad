// The testbed's stand-in for containerd's ctr (v2.3.4, cmd/ctr): the real command line (urfave/cli
// v2, as ctr's) with `version` and `images` import, list and delete, over the stand-ins' content store
// and image stores (packages content and images), so that an image imported into namespace k8s.io is
// one the CRI stand-in has. As the real ctr it needs a running containerd: it reaches the daemon on
// --address first and fails as ctr does when nothing answers there.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"mlplat.test/testbed/standins/internal/standin"
)

const revision = "mlplat-testbed-standin"

func main() {
	version := "v" + standin.Version("containerd")
	if err := newApp(version).Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "ctr: %s\n", err)
		os.Exit(1)
	}
}

func newApp(version string) *cli.App {
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintln(c.App.Writer, c.App.Name, "github.com/containerd/containerd/v2", c.App.Version)
	}
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Aliases: []string{"v"}, Usage: "Print the version", DisableDefaultText: true}
	cli.HelpFlag = &cli.BoolFlag{Name: "help", Aliases: []string{"h"}, Usage: "Show help", DisableDefaultText: true}
	app := cli.NewApp()
	app.Name = "ctr"
	app.Version = version
	app.Usage = "\n        __\n  _____/ /______\n / ___/ __/ ___/\n/ /__/ /_/ /\n\\___/\\__/_/\n\ncontainerd CLI\n"
	app.DisableSliceFlagSeparator = true
	app.Flags = []cli.Flag{
		&cli.BoolFlag{Name: "debug", Usage: "Enable debug output in logs"},
		&cli.StringFlag{Name: "address", Aliases: []string{"a"}, Usage: "Address for containerd's GRPC server", Value: "/run/containerd/containerd.sock", EnvVars: []string{"CONTAINERD_ADDRESS"}},
		&cli.DurationFlag{Name: "timeout", Usage: "Total timeout for ctr commands"},
		&cli.DurationFlag{Name: "connect-timeout", Usage: "Timeout for connecting to containerd"},
		&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "Namespace to use with commands", Value: "default", EnvVars: []string{"CONTAINERD_NAMESPACE"}},
	}
	app.Commands = []*cli.Command{versionCommand(version), imagesCommand()}
	return app
}

func versionCommand(version string) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "Print the client and server versions",
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return fmt.Errorf("extra arguments: %v", c.Args())
			}
			fmt.Println("Client:")
			fmt.Println("  Version: ", version)
			fmt.Println("  Revision:", revision)
			fmt.Println("  Go version:", goVersion())
			fmt.Println("")
			d, err := connect(c)
			if err != nil {
				return err
			}
			v, err := d.version(c.Context)
			if err != nil {
				return err
			}
			fmt.Println("Server:")
			fmt.Println("  Version: ", v)
			fmt.Println("  Revision:", revision)
			fmt.Println("  UUID:", d.uuid())
			if v != version {
				fmt.Fprintln(os.Stderr, "WARNING: version mismatch")
			}
			return nil
		},
	}
}
