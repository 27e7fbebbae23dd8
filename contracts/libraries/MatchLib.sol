// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

import {IClerk} from "../interfaces/IClerk.sol";
import {IAppRegistry, IDatasetRegistry, IWorkerpoolRegistry} from "../interfaces/IRegistries.sol";
import {SignatureLib} from "./SignatureLib.sol";
import {OrderLib} from "./OrderLib.sol";
import {RewardLib} from "./RewardLib.sol";

/// @title Order matching checks
/// @notice Deployed once and linked into the Hub (external library, delegatecall): the checks run once per match and
/// keep the Hub under the 24 KB limit. Pure checks over the orders plus reads of the order book's storage.
library MatchLib {
    using OrderLib for IClerk.AppOrder;
    using OrderLib for IClerk.DatasetOrder;
    using OrderLib for IClerk.WorkerpoolOrder;
    using OrderLib for IClerk.RequestOrder;

    /// @dev Per-order state in one slot: consumed volume, the cancel flag, and who presigned it (zero: nobody). A
    /// presign counts only while its author is still the order's signer, so it does not survive an asset's sale.
    struct OrderState {
        uint88 consumed;
        bool cancelled;
        address presigner;
    }

    /// @dev What the checks need from the Clerk.
    struct Context {
        bytes32 domainSeparator;
        IAppRegistry apps;
        IDatasetRegistry datasets;
        IWorkerpoolRegistry workerpools;
        uint256 categoryCount;
        uint256 maxTrust;
        uint256 maxVolume;
    }

    /// @dev The signed fields of one order, as `_checkOrder` sees them.
    struct Signed {
        bytes32 hash;
        address signer;
        uint256 expiry;
        uint256 nonce;
        uint256 volume;
    }

    /// @dev Everything `matchOrders` needs once the orders are known to match.
    struct Match {
        bytes32 appHash;
        bytes32 datasetHash;
        bytes32 workerpoolHash;
        bytes32 requestHash;
        uint256 volume;
        address scheduler;
        uint8 workerStakeRatio;
        uint8 schedulerRewardRatio;
        uint32 timeref;
        uint256 pricePerTask;
        uint256 stakePerTask;
    }

    /// @notice Every order check of a match, in a fixed order; returns the first failure as an encoded custom error.
    /// @dev Order: assets, prices, category, trust, tags, restrictions, then per order (app, dataset, pool, request):
    /// existence, expiry, nonce, signature, remaining volume. The Clerk then checks the balances.
    function check(
        mapping(bytes32 => OrderState) storage orders,
        mapping(address => uint256) storage nonces,
        Context memory ctx,
        IClerk.AppOrder calldata appOrder,
        IClerk.DatasetOrder calldata datasetOrder,
        IClerk.WorkerpoolOrder calldata poolOrder,
        IClerk.RequestOrder calldata request
    ) external view returns (bytes memory reason, Match memory m) {
        bool hasDataset = request.dataset != 0;
        // Assets.
        if (appOrder.app != request.app) {
            return (abi.encodeWithSelector(IClerk.ClerkAssetMismatch.selector, IClerk.OrderKind.App, appOrder.app, request.app), m);
        }
        if (hasDataset && datasetOrder.dataset != request.dataset) {
            return (
                abi.encodeWithSelector(IClerk.ClerkAssetMismatch.selector, IClerk.OrderKind.Dataset, datasetOrder.dataset, request.dataset),
                m
            );
        }
        if (request.workerpool != 0 && poolOrder.workerpool != request.workerpool) {
            return (
                abi.encodeWithSelector(
                    IClerk.ClerkAssetMismatch.selector, IClerk.OrderKind.Workerpool, poolOrder.workerpool, request.workerpool
                ),
                m
            );
        }
        // Prices.
        reason = _checkPrices(appOrder, datasetOrder, poolOrder, request, hasDataset);
        if (reason.length != 0) return (reason, m);
        // Category and trust.
        if (poolOrder.category != request.category) {
            return (abi.encodeWithSelector(IClerk.ClerkCategoryMismatch.selector, poolOrder.category, request.category), m);
        }
        if (request.category >= ctx.categoryCount) {
            return (abi.encodeWithSelector(IClerk.ClerkUnknownCategory.selector, request.category), m);
        }
        if (request.trust > poolOrder.trust || request.trust > ctx.maxTrust) {
            return (abi.encodeWithSelector(IClerk.ClerkTrustMismatch.selector, poolOrder.trust, request.trust), m);
        }
        // Tags: everything the request, app and dataset need must be offered by the pool.
        {
            bytes32 required = request.tag | appOrder.tag | (hasDataset ? datasetOrder.tag : bytes32(0));
            if (required & ~poolOrder.tag != 0) {
                return (abi.encodeWithSelector(IClerk.ClerkTagMismatch.selector, required, poolOrder.tag), m);
            }
        }
        // Restrictions.
        reason = _checkRestrictions(appOrder, datasetOrder, poolOrder, request, hasDataset);
        if (reason.length != 0) return (reason, m);

        // Signatures, expiry, nonce and remaining volume of each order.
        (reason, m.volume) = _checkApp(orders, nonces, ctx, appOrder, m);
        if (reason.length != 0) return (reason, m);
        if (hasDataset) {
            (reason, m.volume) = _checkDataset(orders, nonces, ctx, datasetOrder, m);
            if (reason.length != 0) return (reason, m);
        }
        (reason, m.volume) = _checkWorkerpool(orders, nonces, ctx, poolOrder, m);
        if (reason.length != 0) return (reason, m);
        m.requestHash = MessageHashUtils.toTypedDataHash(ctx.domainSeparator, request.hash());
        (reason, m.volume) = _checkOrder(
            orders,
            nonces,
            Signed(m.requestHash, request.requester, request.expiry, request.nonce, request.volume),
            request.sign,
            m.volume
        );
        if (reason.length != 0) return (reason, m);

        m.pricePerTask = appOrder.appprice + (hasDataset ? datasetOrder.datasetprice : 0) + poolOrder.workerpoolprice;
        m.stakePerTask = RewardLib.schedulerStake(poolOrder.workerpoolprice);
        return ("", m);
    }

    function _checkApp(
        mapping(bytes32 => OrderState) storage orders,
        mapping(address => uint256) storage nonces,
        Context memory ctx,
        IClerk.AppOrder calldata order,
        Match memory m
    ) private view returns (bytes memory, uint256) {
        address owner = ctx.apps.ownerOrZero(order.app);
        if (owner == address(0)) return (_unknown(IClerk.OrderKind.App, order.app), 0);
        m.appHash = MessageHashUtils.toTypedDataHash(ctx.domainSeparator, order.hash());
        return _checkOrder(
            orders, nonces, Signed(m.appHash, owner, order.expiry, order.nonce, order.volume), order.sign, ctx.maxVolume
        );
    }

    function _checkDataset(
        mapping(bytes32 => OrderState) storage orders,
        mapping(address => uint256) storage nonces,
        Context memory ctx,
        IClerk.DatasetOrder calldata order,
        Match memory m
    ) private view returns (bytes memory, uint256) {
        address owner = ctx.datasets.ownerOrZero(order.dataset);
        if (owner == address(0)) return (_unknown(IClerk.OrderKind.Dataset, order.dataset), 0);
        m.datasetHash = MessageHashUtils.toTypedDataHash(ctx.domainSeparator, order.hash());
        return _checkOrder(
            orders, nonces, Signed(m.datasetHash, owner, order.expiry, order.nonce, order.volume), order.sign, m.volume
        );
    }

    function _checkWorkerpool(
        mapping(bytes32 => OrderState) storage orders,
        mapping(address => uint256) storage nonces,
        Context memory ctx,
        IClerk.WorkerpoolOrder calldata order,
        Match memory m
    ) private view returns (bytes memory, uint256) {
        address owner;
        bool consent;
        try ctx.workerpools.dealTerms(order.workerpool) returns (
            address owner_, address scheduler, uint8 workerStakeRatio, uint8 schedulerRewardRatio, bool consent_
        ) {
            owner = owner_;
            consent = consent_;
            m.scheduler = scheduler;
            m.workerStakeRatio = workerStakeRatio;
            m.schedulerRewardRatio = schedulerRewardRatio;
        } catch {
            return (_unknown(IClerk.OrderKind.Workerpool, order.workerpool), 0);
        }
        if (!consent) {
            return (
                abi.encodeWithSelector(IClerk.ClerkSchedulerWithoutConsent.selector, order.workerpool, m.scheduler), 0
            );
        }
        m.workerpoolHash = MessageHashUtils.toTypedDataHash(ctx.domainSeparator, order.hash());
        return _checkOrder(
            orders, nonces, Signed(m.workerpoolHash, owner, order.expiry, order.nonce, order.volume), order.sign, m.volume
        );
    }

    function _unknown(IClerk.OrderKind kind, uint256 id) private pure returns (bytes memory) {
        return abi.encodeWithSelector(IClerk.ClerkUnknownAsset.selector, kind, id);
    }

    function _checkPrices(
        IClerk.AppOrder calldata appOrder,
        IClerk.DatasetOrder calldata datasetOrder,
        IClerk.WorkerpoolOrder calldata poolOrder,
        IClerk.RequestOrder calldata request,
        bool hasDataset
    ) private pure returns (bytes memory) {
        if (appOrder.appprice > request.appmaxprice) {
            return abi.encodeWithSelector(IClerk.ClerkPriceTooHigh.selector, IClerk.OrderKind.App, appOrder.appprice, request.appmaxprice);
        }
        if (hasDataset && datasetOrder.datasetprice > request.datasetmaxprice) {
            return abi.encodeWithSelector(
                IClerk.ClerkPriceTooHigh.selector, IClerk.OrderKind.Dataset, datasetOrder.datasetprice, request.datasetmaxprice
            );
        }
        if (poolOrder.workerpoolprice > request.workerpoolmaxprice) {
            return abi.encodeWithSelector(
                IClerk.ClerkPriceTooHigh.selector, IClerk.OrderKind.Workerpool, poolOrder.workerpoolprice, request.workerpoolmaxprice
            );
        }
        uint256 maxPrice = type(uint96).max;
        if (appOrder.appprice > maxPrice) return abi.encodeWithSelector(IClerk.ClerkPriceOverflow.selector, appOrder.appprice);
        if (hasDataset && datasetOrder.datasetprice > maxPrice) {
            return abi.encodeWithSelector(IClerk.ClerkPriceOverflow.selector, datasetOrder.datasetprice);
        }
        if (poolOrder.workerpoolprice > maxPrice) {
            return abi.encodeWithSelector(IClerk.ClerkPriceOverflow.selector, poolOrder.workerpoolprice);
        }
        return "";
    }

    function _checkRestrictions(
        IClerk.AppOrder calldata appOrder,
        IClerk.DatasetOrder calldata datasetOrder,
        IClerk.WorkerpoolOrder calldata poolOrder,
        IClerk.RequestOrder calldata request,
        bool hasDataset
    ) private pure returns (bytes memory) {
        uint256 dataset = request.dataset;
        uint256 pool = poolOrder.workerpool;
        address requester = request.requester;
        if (!_allows(appOrder.datasetrestrict, dataset)) return _restricted(IClerk.OrderKind.App, IClerk.OrderKind.Dataset);
        if (!_allows(appOrder.workerpoolrestrict, pool)) return _restricted(IClerk.OrderKind.App, IClerk.OrderKind.Workerpool);
        if (!_allowsAddress(appOrder.requesterrestrict, requester)) return _restricted(IClerk.OrderKind.App, IClerk.OrderKind.Request);
        if (hasDataset) {
            if (!_allows(datasetOrder.apprestrict, appOrder.app)) return _restricted(IClerk.OrderKind.Dataset, IClerk.OrderKind.App);
            if (!_allows(datasetOrder.workerpoolrestrict, pool)) return _restricted(IClerk.OrderKind.Dataset, IClerk.OrderKind.Workerpool);
            if (!_allowsAddress(datasetOrder.requesterrestrict, requester)) {
                return _restricted(IClerk.OrderKind.Dataset, IClerk.OrderKind.Request);
            }
        }
        if (!_allows(poolOrder.apprestrict, appOrder.app)) return _restricted(IClerk.OrderKind.Workerpool, IClerk.OrderKind.App);
        if (!_allows(poolOrder.datasetrestrict, dataset)) return _restricted(IClerk.OrderKind.Workerpool, IClerk.OrderKind.Dataset);
        if (!_allowsAddress(poolOrder.requesterrestrict, requester)) {
            return _restricted(IClerk.OrderKind.Workerpool, IClerk.OrderKind.Request);
        }
        return "";
    }

    function _allows(uint256 restrict, uint256 value) private pure returns (bool) {
        return restrict == 0 || restrict == value;
    }

    function _allowsAddress(address restrict, address value) private pure returns (bool) {
        return restrict == address(0) || restrict == value;
    }

    function _restricted(IClerk.OrderKind kind, IClerk.OrderKind party) private pure returns (bytes memory) {
        return abi.encodeWithSelector(IClerk.ClerkRestricted.selector, kind, party);
    }

    /// @dev Checks one order and returns the smaller of `volume` and its remaining volume.
    function _checkOrder(
        mapping(bytes32 => OrderState) storage orders,
        mapping(address => uint256) storage nonces,
        Signed memory order,
        bytes calldata sign,
        uint256 volume
    ) private view returns (bytes memory, uint256) {
        if (order.expiry != 0 && block.timestamp >= order.expiry) {
            return (abi.encodeWithSelector(IClerk.ClerkOrderExpired.selector, order.hash, order.expiry), 0);
        }
        uint256 current = nonces[order.signer];
        if (order.nonce != current) {
            return (abi.encodeWithSelector(IClerk.ClerkOrderNonceRevoked.selector, order.hash, order.nonce, current), 0);
        }
        OrderState memory state = orders[order.hash];
        bool presigned = state.presigner != address(0) && state.presigner == order.signer;
        if (!presigned && !SignatureLib.isValid(order.signer, order.hash, sign)) {
            return (abi.encodeWithSelector(IClerk.ClerkInvalidSignature.selector, order.hash, order.signer), 0);
        }
        uint256 consumed = state.consumed;
        if (state.cancelled || consumed >= order.volume) {
            return (abi.encodeWithSelector(IClerk.ClerkOrderConsumed.selector, order.hash), 0);
        }
        uint256 remaining = order.volume - consumed;
        return ("", remaining < volume ? remaining : volume);
    }
}
